"""How a byte size or a size cap is shown to people: one convention for the CLI, the app and every message.

Binary units (KiB, MiB, GiB = 1024, 1024², 1024³ bytes), written with their IEC symbols, because every cap in the
code is a power-of-two multiple (`50 * 1024 * 1024`) and Streamlit's `server.maxUploadSize` counts in MiB too:
a cap of 50 then reads "50 MiB", and a file just over it "50.0 MiB" — never "52.4 MB" against "50 MB".
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
_UNITS = ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB"))


def format_bytes(n: int | float) -> str:
    """A size in bytes for people: "812 bytes", "3.5 KiB", "50 MiB" (whole multiples without decimals), "1.2 GiB"."""
    n = max(0, int(n))
    for size, unit in _UNITS:
        if n >= size:
            value = n / size
            return f"{n // size:,} {unit}" if n % size == 0 else f"{value:,.1f} {unit}"
    return "1 byte" if n == 1 else f"{n:,} bytes"


def mib(n_mib: int | float) -> int:
    """n MiB in bytes (Streamlit's server.maxUploadSize is in MiB)."""
    return int(n_mib * MIB)


__all__ = ["GIB", "KIB", "MIB", "format_bytes", "mib"]
