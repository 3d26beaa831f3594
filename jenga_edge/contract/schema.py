"""The feature schema: the fixed contract between training data, graphs and events.

The trainer fits it, the exporter bakes it into every ONNX graph, the agent
vectorizes events with it. A graph takes the raw event only as far as this
module turns it into arrays:

* ``numeric``     float32 [batch, n] — numeric and boolean features in schema
                  order, NaN where a value is missing (the graph imputes it);
* ``categorical`` int64 [batch, m] — vocabulary indices, 0 for a value never
                  seen in training or a missing one (the out-of-vocabulary bucket);
* ``text_bytes``  uint8 [batch, t, L] and ``text_lengths`` int64 [batch, t] — only
                  for a schema with text features (version 3): each text value as
                  its normalized, truncated UTF-8 bytes (contract/text_input.py),
                  zero-padded to L; the graph turns them into byte ids and a mask
                  itself. L is a free axis: at most the longest `max_bytes` of the
                  schema's text features (text_width), at least the longest length
                  in the batch (positions past a text's length are masked, so the
                  agent trims a batch to its longest text; the scores are the same).

Scaling, imputation and embeddings all happen inside the graph, so the schema
records their fitted parameters but the edge never applies them itself.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import msgspec
import numpy as np

from .digest import sha256
from .errors import EventError, SchemaError
from .events import EventModel
from .text_input import encode_text
from .typed import convert
from .values import category_key as category_key
from .values import to_boolean as to_boolean
from .values import to_number as to_number

if TYPE_CHECKING:
    import numpy.typing as npt

SCHEMA_VERSION = 2  # 2: may carry the event model (`events`); version 1 schemas still load
TEXT_SCHEMA_VERSION = 3  # 3: may hold text features (a schema without them is still written as 2)
SCHEMA_VERSIONS = (1, 2, 3)
MAX_TEXT_BYTES = 1024
OOV_INDEX = 0
OOV_TOKEN = "<unk>"

Kind = Literal["numeric", "boolean", "categorical", "text"]
TextNormalize = Literal["none", "dns"]
Truncate = Literal["head", "tail"]
Encoding = Literal["standard", "log1p", "piecewise_linear", "none", "periodic"]
# Fitted and computed by trainer/encodings.py (one class each); named here because a
# bundle's schema says which encoding each feature uses and the agent checks the name.
ENCODING_NAMES: tuple[str, ...] = get_args(Encoding)


class Feature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One input column and the parameters fitted for it on the training split.

    `impute` is in raw units (what a missing value becomes before encoding);
    `mean`/`std` apply after the log1p transform when `encoding` is log1p;
    `edges` are the piecewise-linear bin edges in the same transformed units.
    `categories[0]` is always the out-of-vocabulary token.
    """

    name: str
    kind: Kind
    encoding: Encoding = "none"
    impute: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    allow_missing: bool = True
    # Text only (contract/text_input.py): bytes kept, how the value is normalized (default
    # none), which end is kept (default head). UNSET is never encoded, so a schema without
    # text features encodes, and hashes, as it did before version 3.
    max_bytes: int | msgspec.UnsetType = msgspec.UNSET
    normalize: TextNormalize | msgspec.UnsetType = msgspec.UNSET
    truncate: Truncate | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_numeric(self) -> bool:
        return self.kind in ("numeric", "boolean")

    @property
    def is_text(self) -> bool:
        return self.kind == "text"

    @property
    def text_limit(self) -> int:
        """max_bytes as an int (0 where unset: not a text feature)."""
        return self.max_bytes if isinstance(self.max_bytes, int) else 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.structs.asdict(self)
        data["edges"] = list(self.edges)
        data["categories"] = list(self.categories)
        for key in _TEXT_ONLY:
            if data[key] is msgspec.UNSET:
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Feature:
        name = data.get("name", "?") if isinstance(data, Mapping) else "?"
        feat = convert(cls, data, source=f"feature {name!r}", error=SchemaError)
        feat.check()
        return feat

    def check(self) -> None:
        where = f"feature {self.name!r}"
        if self.kind not in get_args(Kind):
            raise SchemaError(f"{where}: unknown kind {self.kind!r}")
        if self.is_text:
            self._check_text(where)
            return
        if any(getattr(self, key) is not msgspec.UNSET for key in _TEXT_ONLY):
            raise SchemaError(f"{where}: max_bytes, normalize and truncate are for text features only")
        if self.encoding not in ENCODING_NAMES:
            raise SchemaError(f"{where}: unknown encoding {self.encoding!r} (known: {', '.join(ENCODING_NAMES)})")
        if self.kind == "categorical":
            if not self.categories or self.categories[0] != OOV_TOKEN:
                raise SchemaError(f"{where}: categories must start with {OOV_TOKEN!r}")
            return
        if not (math.isfinite(self.impute) and math.isfinite(self.mean) and self.std > 0):
            raise SchemaError(f"{where}: impute/mean must be finite and std > 0")
        # periodic (agents after 0.2.0) encodes the quantile rank over the same kind of edges.
        if self.encoding in ("piecewise_linear", "periodic") and (
            len(self.edges) < 2 or any(b <= a for a, b in itertools.pairwise(self.edges))
        ):
            raise SchemaError(f"{where}: {self.encoding} needs >= 2 strictly increasing edges")

    def _check_text(self, where: str) -> None:
        if not 1 <= self.text_limit <= MAX_TEXT_BYTES:
            got = "none" if self.max_bytes is msgspec.UNSET else self.max_bytes
            raise SchemaError(f"{where}: a text feature needs max_bytes from 1 to {MAX_TEXT_BYTES}, got {got}")
        if self.encoding != "none" or self.edges or self.categories:
            raise SchemaError(f"{where}: a text feature has no encoding, edges or categories (the graph embeds bytes)")
        if self.normalize is not msgspec.UNSET and self.normalize not in get_args(TextNormalize):
            raise SchemaError(
                f"{where}: normalize {self.normalize!r}: expected one of {', '.join(get_args(TextNormalize))}"
            )
        if self.truncate is not msgspec.UNSET and self.truncate not in get_args(Truncate):
            raise SchemaError(f"{where}: truncate {self.truncate!r}: expected head or tail")


_TEXT_ONLY = ("max_bytes", "normalize", "truncate")


class FeatureSchema(msgspec.Struct, dict=True, forbid_unknown_fields=True):
    """Ordered features of one data source; the order is the graph's input order.

    Encoded (JSON, the bundle manifest) as its two fields; the lookups the
    agent reads on every batch are derived once, in __post_init__, and kept
    beside them (dict=True), never encoded.
    """

    features: tuple[Feature, ...]
    version: int = SCHEMA_VERSION
    events: EventModel | None = None  # how records become these features (None: flat records)

    def __post_init__(self) -> None:
        if self.version not in SCHEMA_VERSIONS:
            raise SchemaError(
                f"feature schema version {self.version} is not supported (this build reads versions "
                f"{', '.join(map(str, SCHEMA_VERSIONS))})"
            )
        if self.events is not None and self.version < 2:
            raise SchemaError("feature schema version 1 carries no event model; `events` needs version 2")
        if self.events is not None:
            try:
                self.events.check_normalizers({f.name for f in self.features if f.is_numeric})
            except ValueError as exc:
                raise SchemaError(f"events.{exc}") from None
        names = [f.name for f in self.features]
        if not names:
            raise SchemaError("a feature schema needs at least one feature")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"duplicate feature names in schema: {', '.join(dupes)}")
        for f in self.features:
            f.check()
        if any(f.is_text for f in self.features) and self.version < TEXT_SCHEMA_VERSION:
            raise SchemaError(
                f"text features need feature schema version {TEXT_SCHEMA_VERSION}, this one is {self.version}"
            )
        self._index = {
            f.name: {c: i for i, c in enumerate(f.categories)} for f in self.features if f.kind == "categorical"
        }
        self._numeric = tuple(f for f in self.features if f.is_numeric)
        self._categorical = tuple(f for f in self.features if f.kind == "categorical")
        self._text = tuple(f for f in self.features if f.is_text)

    @property
    def numeric(self) -> tuple[Feature, ...]:
        return self._numeric

    @property
    def categorical(self) -> tuple[Feature, ...]:
        return self._categorical

    @property
    def text(self) -> tuple[Feature, ...]:
        return self._text

    @property
    def text_width(self) -> int:
        """L of the text_bytes input: the longest max_bytes of the text features (0: none)."""
        return max((f.text_limit for f in self._text), default=0)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "features": [f.to_json() for f in self.features],
            "events": self.events.to_json() if self.events is not None else None,
        }

    @property
    def derived(self) -> frozenset[str]:
        """Features the event model computes (never read from the event)."""
        return frozenset(self.events.derive) if self.events else frozenset()

    def __reduce__(self) -> tuple[Any, ...]:
        # pickling rebuilds through __init__, so the derived lookups come back too
        return (FeatureSchema, (self.features, self.version, self.events))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureSchema:
        if not isinstance(data, Mapping) or "features" not in data:
            raise SchemaError("feature schema JSON must be an object with a 'features' list")
        try:
            return msgspec.convert(data, cls, strict=True)
        except msgspec.ValidationError as exc:
            if isinstance(exc.__cause__, SchemaError):  # raised by a __post_init__ or check()
                raise exc.__cause__ from None
            raise SchemaError(f"feature schema: {exc}") from None

    def canonical_json(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    @property
    def sha256(self) -> str:
        return sha256(self.canonical_json().encode("utf-8")).hexdigest()

    def vectorize(
        self, rows: Sequence[Mapping[str, Any]], strict: bool = True
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Turn raw rows into the graph's (numeric, categorical) inputs.

        strict=True is the edge's mode: NaN/inf and missing fields that the
        schema does not allow raise EventError naming the field. strict=False
        is the trainer's: non-finite numbers count as missing.
        """
        num_feats, cat_feats = self.numeric, self.categorical
        num = np.empty((len(rows), len(num_feats)), dtype=np.float32)
        cat = np.empty((len(rows), len(cat_feats)), dtype=np.int64)
        for r, row in enumerate(rows):
            try:
                for j, f in enumerate(num_feats):
                    num[r, j] = self._number(f, row.get(f.name), strict)
                for j, f in enumerate(cat_feats):
                    cat[r, j] = self._category(f, row.get(f.name), strict)
            except EventError as exc:
                exc.row = r
                raise
        return num, cat

    def vectorize_text(
        self, rows: Sequence[Mapping[str, Any]], strict: bool = True
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
        """Raw rows -> the graph's (text_bytes, text_lengths) inputs (contract/text_input.py).

        strict=True: a missing text the schema does not allow raises EventError; a value
        that is not a string raises in both modes (a number is not a name)."""
        feats = self._text
        data = np.zeros((len(rows), len(feats), self.text_width), dtype=np.uint8)
        lengths = np.zeros((len(rows), len(feats)), dtype=np.int64)
        for r, row in enumerate(rows):
            for j, f in enumerate(feats):
                value = row.get(f.name)
                if value is None and strict and not f.allow_missing:
                    exc = EventError("missing_field", f"field {f.name!r} is missing", f.name)
                    exc.row = r
                    raise exc
                try:
                    raw = encode_text(value, f)
                except EventError as exc:
                    exc.row = r
                    raise
                data[r, j, : len(raw)] = np.frombuffer(raw, dtype=np.uint8)
                lengths[r, j] = len(raw)
        return data, lengths

    def _number(self, f: Feature, value: Any, strict: bool) -> float:
        if isinstance(value, float) and not math.isfinite(value):
            if strict:
                raise EventError("non_finite", f"field {f.name!r} is {value}, expected a finite number", f.name)
            return math.nan
        if value is None:
            if strict and not f.allow_missing:
                raise EventError("missing_field", f"field {f.name!r} is missing", f.name)
            return math.nan
        x = to_boolean(value, f.name) if f.kind == "boolean" else to_number(value, f.name)
        if not math.isfinite(x):
            if strict:
                raise EventError("non_finite", f"field {f.name!r} is {x}, expected a finite number", f.name)
            return math.nan
        return x

    def _category(self, f: Feature, value: Any, strict: bool) -> int:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if strict and not f.allow_missing:
                raise EventError("missing_field", f"field {f.name!r} is missing", f.name)
            return OOV_INDEX
        if isinstance(value, (dict, list)):
            raise EventError(
                "wrong_type", f"field {f.name!r} is a {type(value).__name__}, expected a string or number", f.name
            )
        return self._index[f.name].get(category_key(value), OOV_INDEX)
