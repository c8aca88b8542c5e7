"""Reading back the PNGs sksearch draws: a readable size, not blank, and what was drawn on them."""

import json

from PIL import Image


def drawn(path, min_width=300, min_height=200):
    """The panels a sksearch PNG records (title, xlabel, ylabel, legend entries), after checking
    that it is a PNG of at least min_width x min_height pixels with more than a few colours."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_width and image.height >= min_height, image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 16, "the picture is (nearly) blank"
        return json.loads(image.text["Description"])


def title(path):
    """The figure title a sksearch PNG records."""
    with Image.open(path) as image:
        return image.text.get("Title", "")
