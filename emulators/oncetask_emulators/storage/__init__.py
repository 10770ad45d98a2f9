"""A Cloud Storage emulator: the JSON API the `google-cloud-storage` client uses, with production's generations,
preconditions, uploads, ranged downloads and errors."""
