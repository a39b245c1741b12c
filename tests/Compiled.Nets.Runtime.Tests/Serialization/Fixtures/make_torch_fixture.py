"""Writes tiny_torch_save.bin the way torch.save(state_dict, f) does, using CPython's own pickler.

torch is not installable here, so a stand-in `torch` package provides the names the pickle refers to
(torch.FloatStorage, torch._utils._rebuild_tensor_v2, ...). The opcode stream, memo numbering and BINPERSID
persistent ids are then exactly what CPython's C pickler emits for torch.save's protocol 2, and the zip layout
copies PyTorchFileWriter's: <top>/data.pkl, byteorder, data/<key>, version, .data/serialization_id, stored
uncompressed with each entry's data aligned to 64 bytes through an 'FB' extra field.
Run: python3 make_torch_fixture.py  (writes tiny_torch_save.bin beside this script)
"""
import os, pickle, struct, sys, tempfile, types, zipfile
from collections import OrderedDict

# ---- stand-in torch: only names, nothing that runs ----
torch = types.ModuleType("torch"); torch._utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = torch._utils
class Storage:
    def __init__(self, key, fmt, values): self.key, self.fmt, self.values = key, fmt, values
for name in ("FloatStorage", "HalfStorage", "LongStorage"):
    cls = type(name, (Storage,), {"__module__": "torch"}); setattr(torch, name, cls)
def _rebuild_tensor_v2(*args): raise AssertionError("never called")
_rebuild_tensor_v2.__module__ = "torch._utils"; torch._utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class Tensor:
    def __init__(self, storage, offset, size, stride): self.args = (storage, offset, tuple(size), tuple(stride))
    def __reduce_ex__(self, proto):  # torch.Tensor._reduce_ex_internal for a plain CPU tensor
        return (torch._utils._rebuild_tensor_v2, self.args + (False, OrderedDict()))

class Pickler(pickle.Pickler):
    def persistent_id(self, obj):  # torch.serialization._save's persistent_id
        if isinstance(obj, Storage):
            return ("storage", type(obj), obj.key, "cpu", len(obj.values))
        return None

w = torch.FloatStorage("0", "<f", [0.5 * i - 1.0 for i in range(6)])  # 2x3 weight
h = torch.HalfStorage("1", "<e", [1.5, -0.25, 65504.0])
ids = torch.LongStorage("2", "<q", [0, 1, 2, 3])
sd = OrderedDict()
sd["bert.pooler.dense.weight"] = Tensor(w, 0, [2, 3], [3, 1])
sd["bert.pooler.dense.weight_t"] = Tensor(w, 0, [3, 2], [1, 3])   # transposed view of the same storage
sd["row1"] = Tensor(w, 3, [3], [1])                               # offset view
sd["half"] = Tensor(h, 0, [3], [1])
sd["bert.embeddings.position_ids"] = Tensor(ids, 0, [1, 4], [4, 1])
sd["scalar"] = Tensor(w, 5, [], [])
sd._metadata = OrderedDict([("", {"version": 1}), ("bert", {"version": 1})])

import io
buf = io.BytesIO(); Pickler(buf, protocol=2).dump(sd)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny_torch_save.bin")
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    def add(name, data):
        name = "tiny_torch_save/" + name
        offset = z.fp.tell()
        pad = (64 - (offset + 30 + len(name) + 4) % 64) % 64
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        z.writestr(info, data)
    add("data.pkl", buf.getvalue())
    add("byteorder", b"little")
    for s in (w, h, ids):
        add("data/" + s.key, b"".join(struct.pack(s.fmt, v) for v in s.values))
    add("version", b"3\n")
    add(".data/serialization_id", b"0123456789")
print(out, os.path.getsize(out))
