"""oncetask's pytest plugin (registered as the `pytest11` entry point `oncetask`): fixtures that start the
faithful emulators and a local stack for your app. A placeholder until the plugin itself lands."""
