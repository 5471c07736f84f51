#!/usr/bin/env python3
"""Draws the node's 128x128 icon (resources/org.texttovideo.TextToVideo.png) with the Python
standard library only: a rounded dark-blue-to-violet tile, film perforations along the top and
bottom, and a play triangle over three text lines. Rerun to regenerate; the PNG is committed."""
import struct, zlib, os

N = 128
def inside_rounded(x, y, r=20):
    cx = min(max(x, r), N - 1 - r); cy = min(max(y, r), N - 1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

def pixel(x, y):
    if not inside_rounded(x, y):
        return (0, 0, 0, 0)
    t = (x + y) / (2 * (N - 1))
    r, g, b = int(30 + 90 * t), int(40 + 20 * t), int(110 + 80 * t)
    # Film perforations.
    if (8 <= y < 18 or N - 18 <= y < N - 8) and (x % 16) in range(4, 12) and 12 <= x < N - 12:
        return (235, 235, 245, 255)
    # Three "text" lines on the left.
    for i, w in enumerate((44, 36, 40)):
        ly = 46 + i * 14
        if ly <= y < ly + 6 and 20 <= x < 20 + w:
            return (200, 210, 235, 255)
    # Play triangle on the right.
    px, py = x - 72, y - 64
    if 0 <= px <= 36 and abs(py) <= 22 - px * 22 / 36:
        return (255, 170, 40, 255)
    return (r, g, b, 255)

raw = b"".join(b"\x00" + bytes(c for x in range(N) for c in pixel(x, y)) for y in range(N))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "org.texttovideo.TextToVideo.png")
open(out, "wb").write(png)
print(out, len(png), "bytes")
