"""A small vector index over the router's embeddings: exact cosine search in numpy, persisted through a store.

Pure Python + numpy (the core): the storage edge is passed in as an :class:`IndexStore` (IndexedDB in the
browser, ``index_store_idb.py``; :class:`MemoryIndexStore` in tests and where IndexedDB is missing) and the
embeddings come from an ``embed`` function (the router's embed path).

- :class:`VectorIndex`: ids, texts and unit-norm float32 rows in insertion order; ``upsert`` (an id
  added again replaces its text and vector), ``remove``, ``search`` (scores are dot products of unit
  vectors, i.e. cosines; best first, ties by id so the order survives a reload).
- :class:`Indexes`: named indexes, opened from the store on first use, each bound to one embedding
  model (the one it was created with); every change is written to the store before memory, so a failed
  write leaves both as they were. The router runs ``add`` and ``search`` as plans (their route says the
  search ran on the device); the wire methods are ``index_open``, ``index_add``, ``index_search``,
  ``index_remove``, ``index_drop`` and ``index_list`` (:mod:`hybrid_router.wire`).

One worker holds each open index in memory; another tab's worker sees its changes on its next open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
else:
    from hybrid_router._lazy import numpy as np

from hybrid_router import validation
from hybrid_router.errors import ValidationError

__all__ = [
    "MAX_ADD",
    "MAX_TOP_K",
    "Hit",
    "IndexAdd",
    "IndexMeta",
    "IndexSearch",
    "IndexStore",
    "Indexes",
    "MemoryIndexStore",
    "StoredIndex",
    "VectorIndex",
]

#: The most items one ``add`` may carry (embedded in batches by length, as every embedding call is).
MAX_ADD = 10_000
MAX_TOP_K = 1_000
MAX_NAME = 200
MAX_ID = 1_000

Vectors: TypeAlias = "npt.NDArray[np.float32]"
#: (texts, embedding model id) -> one unit-norm row per text, in order
EmbedFn = Callable[[list[str], str], Awaitable[Vectors]]


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "text": self.text}


@dataclass(frozen=True)
class IndexMeta:
    """What an index is: its name, the embedding model its vectors come from, and their size."""

    name: str
    model: str
    dims: int | None = None  # known after the first add

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "dims": self.dims}


@dataclass(frozen=True, eq=False)
class StoredIndex:
    """An index as the store gives it back: meta, then ids, texts and ``(n, dims)`` vectors in one array."""

    meta: IndexMeta
    ids: list[str]
    texts: list[str]
    vectors: Vectors


class IndexStore(Protocol):
    """Where indexes persist. Every method is async and raises ``StorageError`` when the store fails."""

    async def load(self, name: str) -> StoredIndex | None: ...

    async def save_meta(self, meta: IndexMeta) -> None: ...

    async def put(self, name: str, ids: list[str], texts: list[str], vectors: Vectors) -> None:
        """Add or replace the items ``ids`` (one row of ``vectors`` each)."""
        ...

    async def delete(self, name: str, ids: list[str]) -> None: ...

    async def drop(self, name: str) -> None:
        """Delete the index: its meta and every item."""
        ...

    async def names(self) -> list[str]: ...


class VectorIndex:
    """ids, texts and unit-norm rows, in insertion order (see the module docstring)."""

    def __init__(
        self,
        meta: IndexMeta,
        ids: Sequence[str] = (),
        texts: Sequence[str] = (),
        vectors: Vectors | None = None,
    ) -> None:
        self.meta = meta
        self._ids: list[str] = list(ids)
        self._texts: list[str] = list(texts)
        dims = meta.dims or 0
        self._rows: Vectors = np.zeros((0, dims), np.float32)
        if vectors is not None and len(self._ids):
            self._rows = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(self._ids), -1)
        elif vectors is not None and np.size(vectors):
            raise ValueError("ids, texts and vectors must have the same length")
        if len(self._texts) != len(self._ids) or self._rows.shape[0] != len(self._ids):
            raise ValueError("ids, texts and vectors must have the same length")
        self._where = {item: i for i, item in enumerate(self._ids)}
        if len(self._where) != len(self._ids):
            raise ValueError("duplicate ids in an index")

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._where

    @property
    def ids(self) -> list[str]:
        return list(self._ids)

    def text_of(self, item: str) -> str:
        return self._texts[self._where[item]]

    def vector_of(self, item: str) -> Vectors:
        row: Vectors = self._rows[self._where[item]].copy()
        return row

    def upsert(self, ids: Sequence[str], texts: Sequence[str], vectors: Vectors) -> int:
        """Add new ids at the end, replace the text and vector of known ones; return how many were new."""
        rows = np.asarray(vectors, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(ids) or len(texts) != len(ids):
            raise ValueError(f"{len(ids)} ids, {len(texts)} texts and vectors of shape {rows.shape}")
        if self._rows.shape[0] == 0:
            self._rows = np.zeros((0, rows.shape[1]), np.float32)
        if rows.shape[1] != self._rows.shape[1]:
            raise ValueError(f"vectors of {rows.shape[1]} dims for an index of {self._rows.shape[1]}")
        new = [i for i, item in enumerate(ids) if item not in self._where]
        for i, item in enumerate(ids):
            at = self._where.get(item)
            if at is not None:
                self._texts[at] = texts[i]
                self._rows[at] = rows[i]
        for i in new:
            self._where[ids[i]] = len(self._ids)
            self._ids.append(ids[i])
            self._texts.append(texts[i])
        if new:
            self._rows = np.concatenate([self._rows, rows[new]])
        return len(new)

    def remove(self, ids: Sequence[str]) -> int:
        """Remove the known ids among ``ids``; return how many were removed."""
        drop = {self._where[item] for item in ids if item in self._where}
        if drop:
            keep = [i for i in range(len(self._ids)) if i not in drop]
            self._ids = [self._ids[i] for i in keep]
            self._texts = [self._texts[i] for i in keep]
            self._rows = self._rows[keep]
            self._where = {item: i for i, item in enumerate(self._ids)}
        return len(drop)

    def search(self, query: Vectors, top_k: int) -> list[Hit]:
        """The ``top_k`` items most similar to ``query`` (a unit vector), best first; ties by id."""
        if not self._ids or top_k < 1:
            return []
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        scores = self._rows @ q
        k = min(top_k, len(scores))
        if k < len(scores):  # everything that could be in the top k: at least the k-th best score
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            candidates = np.nonzero(scores >= kth)[0]
        else:
            candidates = np.arange(len(scores))
        order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), self._ids[i]))[:k]
        return [Hit(self._ids[i], float(scores[i]), self._texts[i]) for i in order]


@dataclass
class MemoryIndexStore:
    """An :class:`IndexStore` in memory (unit tests; the browser when IndexedDB is unavailable)."""

    metas: dict[str, IndexMeta] = field(default_factory=dict)
    items: dict[str, dict[str, tuple[str, Vectors]]] = field(default_factory=dict)
    persistent: bool = False

    async def load(self, name: str) -> StoredIndex | None:
        meta = self.metas.get(name)
        if meta is None:
            return None
        rows = self.items.get(name, {})
        ids = sorted(rows)
        vectors = np.stack([rows[i][1] for i in ids]) if ids else np.zeros((0, meta.dims or 0), np.float32)
        return StoredIndex(meta, ids, [rows[i][0] for i in ids], vectors.astype(np.float32))

    async def save_meta(self, meta: IndexMeta) -> None:
        self.metas[meta.name] = meta

    async def put(self, name: str, ids: list[str], texts: list[str], vectors: Vectors) -> None:
        rows = self.items.setdefault(name, {})
        for item, text, vector in zip(ids, texts, vectors, strict=True):
            rows[item] = (text, np.array(vector, np.float32))

    async def delete(self, name: str, ids: list[str]) -> None:
        rows = self.items.get(name, {})
        for item in ids:
            rows.pop(item, None)

    async def drop(self, name: str) -> None:
        self.metas.pop(name, None)
        self.items.pop(name, None)

    async def names(self) -> list[str]:
        return sorted(self.metas)


def _name(value: object) -> str:
    name = validation.optional_str(value, "name")
    if name is None or len(name) > MAX_NAME:
        raise ValidationError(
            f"name must be a non-empty string of at most {MAX_NAME} characters",
            hint="Name the index, e.g. router.openIndex('notes').",
            field="name",
            got=validation.type_name(value),
        )
    return name


def _ids(value: object, *, field: str = "ids", max_items: int = MAX_ADD) -> list[str]:
    items = validation.texts(value, field=field, max_items=max_items, max_chars=MAX_ID)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not item:
            raise ValidationError(
                f"{field}[{index}] is an empty string",
                hint="Give every item a non-empty id.",
                field=f"{field}[{index}]",
                index=index,
            )
        if item in seen:
            raise ValidationError(
                f"{field}[{index}] repeats the id {item!r}",
                hint="Each id may appear once per call; merge the duplicates first.",
                field=f"{field}[{index}]",
                index=index,
            )
        seen.add(item)
    return items


@dataclass(frozen=True)
class IndexAdd:
    """``index_add``, checked: texts to embed and store under ids in the index ``name``."""

    name: str
    ids: list[str]
    texts: list[str]

    @classmethod
    def parse(cls, name: object, ids: object, texts: object) -> IndexAdd:
        key, keys = _name(name), _ids(ids)
        items = validation.texts(texts, field="texts", max_items=MAX_ADD)
        if len(items) != len(keys):
            raise ValidationError(
                f"{len(keys)} ids but {len(items)} texts",
                hint="Pass one text per id, in the same order.",
                field="texts",
            )
        return cls(key, keys, items)


@dataclass(frozen=True)
class IndexSearch:
    """``index_search``, checked: the ``top_k`` items of ``name`` nearest to ``query``."""

    name: str
    query: str
    top_k: int = 10

    @classmethod
    def parse(cls, name: object, query: object, top_k: object = 10) -> IndexSearch:
        key = _name(name)
        if not isinstance(query, str):
            raise ValidationError(
                f"query must be a string, got {validation.type_name(query)}",
                hint="Search with the text to look for.",
                field="query",
                got=validation.type_name(query),
            )
        return cls(key, query, validation.positive_int(top_k, "top_k", maximum=MAX_TOP_K))


class Indexes:
    """Named vector indexes over ``store``, embedded with ``embed`` (the router's embedding step)."""

    def __init__(self, store: IndexStore, embed: EmbedFn, *, default_model: Callable[[], str]) -> None:
        self.store = store
        self._embed = embed
        self._default_model = default_model
        self._open: dict[str, VectorIndex] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def open(self, name: object, model: object = None) -> VectorIndex:
        """The index ``name`` (loaded from the store, or created with ``model``, default the router's
        embedding model). Reopening with another model than the index's is a ``ValidationError``."""
        key = _name(name)
        wanted = validation.optional_str(model, "model")
        async with self._lock(key):
            index = self._open.get(key)
            if index is None:
                stored = await self.store.load(key)
                if stored is None:
                    meta = IndexMeta(key, wanted or self._default_model())
                    await self.store.save_meta(meta)
                    index = VectorIndex(meta)
                else:
                    index = VectorIndex(stored.meta, stored.ids, stored.texts, stored.vectors)
                self._open[key] = index
        if wanted is not None and wanted != index.meta.model:
            raise ValidationError(
                f"index {key!r} holds vectors of {index.meta.model}, not {wanted}",
                hint="Open it without a model (or with its own), or use another index name for this model.",
                field="model",
                model=wanted,
                index=key,
            )
        return index

    def info(self, index: VectorIndex) -> dict[str, Any]:
        persistent = bool(getattr(self.store, "persistent", True))
        return {**index.meta.to_dict(), "count": len(index), "persistent": persistent}

    async def add(self, request: IndexAdd) -> dict[str, Any]:
        """Embed the texts and store them under their ids (replacing known ids)."""
        index = await self.open(request.name)
        vectors = await self._embed(request.texts, index.meta.model)
        async with self._lock(index.meta.name):
            if index.meta.dims is None:
                index.meta = IndexMeta(index.meta.name, index.meta.model, int(vectors.shape[1]))
                await self.store.save_meta(index.meta)
            await self.store.put(index.meta.name, request.ids, request.texts, vectors)
            added = index.upsert(request.ids, request.texts, vectors)
        return {"added": added, "replaced": len(request.ids) - added, "count": len(index)}

    async def search(self, request: IndexSearch) -> dict[str, Any]:
        index = await self.open(request.name)
        vectors = await self._embed([request.query], index.meta.model)
        hits = index.search(vectors[0], request.top_k)
        return {"results": [h.to_wire() for h in hits], "count": len(index)}

    async def remove(self, name: object, ids: object) -> dict[str, Any]:
        keys = _ids(ids)
        index = await self.open(name)
        async with self._lock(index.meta.name):
            known = [k for k in keys if k in index]
            if known:
                await self.store.delete(index.meta.name, known)
            removed = index.remove(known)
        return {"removed": removed, "missing": [k for k in keys if k not in known], "count": len(index)}

    async def drop(self, name: object) -> dict[str, Any]:
        key = _name(name)
        async with self._lock(key):
            await self.store.drop(key)
            self._open.pop(key, None)
        return {"dropped": key}

    async def names(self) -> list[str]:
        return sorted(set(await self.store.names()) | set(self._open))
