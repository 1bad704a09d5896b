"""Read a CTranslate2 ``model.bin`` (binary format versions 5 and 6) into numpy arrays.

The format (CTranslate2's ``models/model.cc``): a little-endian header (version, spec name, spec revision),
then each variable as ``name, rank, shape, dtype, byte count, bytes``, then the aliases (a variable that
shares another's storage, e.g. Whisper's output projection tied to the token embedding). Strings are a
uint16 length (the terminating NUL included) followed by the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.common import BuildError

#: CTranslate2's DataType enum -> numpy dtype name ("bfloat16" is widened to float32)
_DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


@dataclass(frozen=True)
class Ct2Model:
    version: int
    spec: str
    revision: int
    variables: dict[str, Any]  # name -> numpy array (0-d for scalars)
    aliases: dict[str, str]  # alias -> the variable it names

    def get(self, name: str) -> Any:
        try:
            return self.variables[self.aliases.get(name, name)]
        except KeyError:
            raise BuildError(f"CTranslate2 model ({self.spec}) has no variable {name!r}") from None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.take("<H")
        text = self.data[self.pos : self.pos + n - 1].decode("utf-8")
        self.pos += n
        return text

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise BuildError("CTranslate2 model.bin is truncated")
        self.pos += n
        return chunk


def read_ct2(path: Path) -> Ct2Model:
    import numpy as np

    r = _Reader(path.read_bytes())
    version = r.take("<I")
    if version not in (5, 6):
        raise BuildError(f"{path}: CTranslate2 binary version {version} is not supported (5 or 6)")
    spec, revision = r.string(), r.take("<I")
    variables: dict[str, Any] = {}
    for _ in range(r.take("<I")):
        name = r.string()
        shape = [r.take("<I") for _ in range(r.take("<B"))]
        dtype = _DTYPES.get(r.take("<B"))
        if dtype is None:
            raise BuildError(f"{path}: variable {name} has an unknown CTranslate2 dtype")
        raw = r.raw(r.take("<I"))
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, dtype)
        variables[name] = array.reshape(shape)
    aliases: dict[str, str] = {}
    if r.pos < len(r.data):
        for _ in range(r.take("<I")):
            alias = r.string()
            aliases[alias] = r.string()
    return Ct2Model(version, spec, revision, variables, aliases)
