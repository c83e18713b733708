"""The three output formats, written from one output file's documents in order.

- megatron: `NAME.bin` (the tokens of every document, back to back, in the index's dtype)
  and `NAME.idx`, laid out as megatron-core's `IndexedDataset` reads it: the magic
  `MMIDIDX\\x00\\x00`, version 1 (<Q), the dtype code (<B: 8 = uint16, 4 = int32), the
  sequence count and the document-index count (<Q each), then the sequence lengths
  (int32), their byte offsets into `.bin` (int64) and the document index (int64: 0, then
  the end of each document in sequences). One document is one sequence.
- numpy: `NAME.npy`, the tokens as a flat headerless memmap (uint16 or uint32, what OLMo's
  and Dolma's readers map), and `NAME.docs.npy` (np.save, int64): document i is
  tokens[docs[i]:docs[i + 1]].
- jsonl: `NAME.jsonl`, one `{"id", "text"}` object per line.

Each writer streams chunks of documents (`add`) into temporary files and returns the final
names with their temporary paths (`finish`); the caller moves them into place.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pyarrow as pa

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


class Writer:
    suffixes: tuple[str, ...] = ()

    def __init__(self, fs, tmp_prefix: str, dtype: np.dtype):
        self.fs, self.tmp_prefix, self.dtype = fs, tmp_prefix, dtype
        self.lengths: list[np.ndarray] = []  # per chunk: tokens (or bytes) of each document
        self.main = fs.open(tmp_prefix + self.suffixes[0], "wb")

    def add(self, payload: pa.Array) -> None:
        """One chunk of documents, in order: list<uint16|uint32> ids, or binary lines."""
        values = payload.values if isinstance(payload, (pa.ListArray, pa.LargeListArray)) \
            else None
        if values is None:
            data = payload.buffers()[2]
            offsets = np.frombuffer(payload.buffers()[1], np.int32)[
                payload.offset:payload.offset + len(payload) + 1]
            self.main.write(memoryview(data)[offsets[0]:offsets[-1]])
        else:
            offsets = np.asarray(payload.offsets)
            flat = values.to_numpy()[offsets[0]:offsets[-1]]
            self.main.write(flat.astype(self.dtype, copy=False).tobytes())
        self.lengths.append(np.diff(offsets).astype(np.int64))

    def finish(self) -> dict[str, str]:
        """Close the files; {final suffix: temporary path}."""
        self.main.close()
        return {self.suffixes[0]: self.tmp_prefix + self.suffixes[0]}

    def all_lengths(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)


class MegatronWriter(Writer):
    suffixes = (".bin", ".idx")

    def finish(self) -> dict[str, str]:
        files = super().finish()
        lengths = self.all_lengths()
        pointers = np.zeros(len(lengths), np.int64)
        np.cumsum(lengths[:-1] * self.dtype.itemsize, out=pointers[1:])
        document_index = np.arange(len(lengths) + 1, dtype=np.int64)
        header = io.BytesIO()
        header.write(MEGATRON_MAGIC)
        header.write(struct.pack("<Q", 1))
        header.write(struct.pack("<B", MEGATRON_DTYPE_CODES[self.dtype]))
        header.write(struct.pack("<Q", len(lengths)))
        header.write(struct.pack("<Q", len(document_index)))
        with self.fs.open(self.tmp_prefix + ".idx", "wb") as f:
            f.write(header.getvalue())
            for array, kind in ((lengths, "<i4"), (pointers, "<i8"), (document_index, "<i8")):
                f.write(array.astype(kind).tobytes())
        return files | {".idx": self.tmp_prefix + ".idx"}


class NumpyWriter(Writer):
    suffixes = (".npy", ".docs.npy")

    def finish(self) -> dict[str, str]:
        files = super().finish()
        starts = np.zeros(len(self.all_lengths()) + 1, np.int64)
        np.cumsum(self.all_lengths(), out=starts[1:])
        with self.fs.open(self.tmp_prefix + ".docs.npy", "wb") as f:
            np.save(f, starts)
        return files | {".docs.npy": self.tmp_prefix + ".docs.npy"}


class JsonlWriter(Writer):
    suffixes = (".jsonl",)


WRITERS = {"megatron": MegatronWriter, "numpy": NumpyWriter, "jsonl": JsonlWriter}
