"""Pure image work over bytes: probe a hostile upload safely, make WebP thumbnails of it, and lay thumbnails out
on one contact sheet.

Every way an input can be bad (not an image, truncated, a format we do not open, a decompression bomb) ends in
one `PermanentError` naming the problem: no retry turns a corrupt file into an image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps

from oncetask import PermanentError

# Only these decoders ever see the bytes: Pillow would otherwise try every plugin it has, including ones that
# shell out (EPS runs Ghostscript) or parse rarely audited formats.
ALLOWED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
# Our own pixel cap, below Pillow's global MAX_IMAGE_PIXELS (89.5 Mpx), which we leave alone because other code
# in the process shares it. 40 Mpx decoded as RGBA is 160 MB: the most one job may hold.
MAX_PIXELS = 40_000_000
MAX_SIDE = 20_000  # a 40000x1 strip is within the pixel cap but still nonsense for a thumbnail source
WEBP_MAX_SIDE = 16_383  # the WebP format cannot hold a longer side


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str
    animated: bool

    def to_dict(self) -> dict[str, object]:
        return {"format": self.format, "width": self.width, "height": self.height, "mode": self.mode,
                "animated": self.animated}


@dataclass(frozen=True)
class Thumbnail:
    requested_width: int
    width: int
    height: int
    data: bytes


def probe(data: bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Format and size from the header, after checking the size is sane, then a decode of the whole body."""
    with _open_checked(data, max_pixels) as image:
        format_, size, mode = str(image.format), image.size, image.mode  # before a JPEG draft shrinks them
        _shrink_jpeg_decode(image, 1)  # every coefficient is still decoded (corruption shows), into 1/64 the pixels
        _decode(image)
        return ImageInfo(format=format_, width=size[0], height=size[1], mode=mode, animated=_is_animated(image))


def thumbnails(data: bytes, widths: list[int], quality: int = 80,
               max_pixels: int = MAX_PIXELS) -> list[Thumbnail]:
    """One WebP per requested width, aspect kept, never upscaled (a width above the source's gives the source's).

    Animated sources give their first frame. The output bytes depend only on the input and the Pillow version, so
    a rerun writes the same objects.
    """
    with _open_checked(data, max_pixels) as image:
        _shrink_jpeg_decode(image, max(widths))
        _decode(image)
        # Respect the camera's orientation tag, as every viewer does; otherwise portraits come out sideways.
        try:
            ImageOps.exif_transpose(image, in_place=True)
        except Exception:  # noqa: BLE001 - a broken EXIF block is metadata damage, not a broken image
            pass
        target = "RGBA" if _has_alpha(image) else "RGB"
        source = image if image.mode == target else image.convert(target)  # no copy when none is needed
        return [_thumbnail(source, requested, quality) for requested in widths]


def _thumbnail(source: Image.Image, requested: int, quality: int) -> Thumbnail:
    width = min(requested, source.width)
    height = max(1, round(source.height * width / source.width))
    if height > WEBP_MAX_SIDE:
        raise PermanentError(
            "IMAGE_TOO_TALL", f"a {width}px-wide thumbnail of this {source.width}x{source.height} image would be "
                              f"{height}px tall, more than WebP's {WEBP_MAX_SIDE}")
    resized = source if (width, height) == source.size else source.resize(
        (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    out = io.BytesIO()
    resized.save(out, format="WEBP", quality=quality, method=4)
    return Thumbnail(requested, width, height, out.getvalue())


def _shrink_jpeg_decode(image: Image.Image, side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while both sides stay at least `side` pixels.

    A 24 Mpx photo for 256 px thumbnails then costs 1/64 of the memory and time (Pillow's own thumbnail() does
    this); other formats have no such mode and are decoded whole.
    """
    if image.format == "JPEG":
        image.draft(None, (side, side))


def _open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and check dimensions before anything allocates pixels."""
    if not data:
        raise PermanentError("INVALID_IMAGE", "the source is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.UnidentifiedImageError as exc:
        raise PermanentError(
            "INVALID_IMAGE", f"not an image in a supported format ({', '.join(ALLOWED_FORMATS)})") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning is raised only where a warnings filter turns it into an error; the verdict is the same.
        raise PermanentError("IMAGE_TOO_LARGE", f"decompression bomb refused: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a header parser fed hostile bytes can fail in any way
        raise PermanentError("INVALID_IMAGE", f"unreadable image header: {type(exc).__name__}: {exc}") from exc
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise PermanentError("INVALID_IMAGE", f"image has no pixels ({width}x{height})")
    if width * height > max_pixels or max(width, height) > MAX_SIDE:
        image.close()
        raise PermanentError(
            "IMAGE_TOO_LARGE",
            f"image is {width}x{height} = {width * height} pixels; at most {max_pixels} pixels and {MAX_SIDE} "
            "per side are allowed")
    return image


def _decode(image: Image.Image) -> None:
    """Decode the first frame fully: a truncated or corrupt body shows only here."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PermanentError("IMAGE_TOO_LARGE", f"decompression bomb refused: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - decoders report corruption as OSError, SyntaxError, ValueError...
        raise PermanentError(
            "INVALID_IMAGE", f"corrupt or truncated {image.format} image: {type(exc).__name__}: {exc}") from exc


def _is_animated(image: Image.Image) -> bool:
    """Whether a second frame exists: Pillow finds out by parsing up to it, which damaged frames make fail."""
    try:
        return bool(getattr(image, "is_animated", False))
    except Exception as exc:  # noqa: BLE001 - as in _decode: hostile bytes fail in any way
        raise PermanentError("INVALID_IMAGE",
                             f"corrupt {image.format} animation frames: {type(exc).__name__}: {exc}") from exc


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def contact_sheet(tiles: list[bytes | None], tile: int, columns: int, quality: int = 80) -> bytes:
    """One WebP of `tile`-pixel cells, `columns` to a row, in order: each image centred in its cell, None left
    empty (light grey). The bytes depend only on the inputs and the Pillow version, so a rerun writes the same."""
    rows = max(1, -(-len(tiles) // columns))
    sheet = Image.new("RGB", (min(columns, max(len(tiles), 1)) * tile, rows * tile), (238, 238, 238))
    for index, data in enumerate(tiles):
        if data is None:
            continue
        with _open_checked(data, tile * WEBP_MAX_SIDE) as image:  # a thumbnail `tile` wide, as tall as WebP allows
            _decode(image)
            cell = image.convert("RGBA")
            cell.thumbnail((tile, tile), Image.Resampling.LANCZOS)
            x, y = (index % columns) * tile, (index // columns) * tile
            sheet.paste(cell, (x + (tile - cell.width) // 2, y + (tile - cell.height) // 2), cell)
    out = io.BytesIO()
    sheet.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()
