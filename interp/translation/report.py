"""``ProbeReport``: per-example rows of a translation probe and the aggregates of the paper's
analysis (per pair and per target resource level), with figures and save/load."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from interp.core.errors import missing_file
from interp.translation.errors import TranslationConfigError, TranslationLoadError
from interp.translation.matching import Outcome

__all__ = ["ProbeReport", "FORMAT"]

FORMAT = "interp.translation.probe_report/1"
_ROW_KEYS = ("pair", "src", "tgt", "outcome", "layer_languages", "target_resource")
Metric = Literal["accuracy", "translation_failure_rate", "translation_failure_share", "task_failure_rate",
                 "target_lost_rate"]


def _rates(outcomes: list[str]) -> dict[str, float]:
    n = len(outcomes)
    c = Counter(outcomes)
    fails = n - c[Outcome.CORRECT.value]
    return dict(
        n=n,
        accuracy=c[Outcome.CORRECT.value] / n if n else float("nan"),
        translation_failure_rate=c[Outcome.TRANSLATION_FAILURE.value] / n if n else float("nan"),
        target_lost_rate=c[Outcome.TARGET_LOST.value] / n if n else float("nan"),
        task_failure_rate=c[Outcome.TASK_FAILURE.value] / n if n else float("nan"),
        translation_failure_share=c[Outcome.TRANSLATION_FAILURE.value] / fails if fails else float("nan"),
    )


class ProbeReport:
    """Rows (one per example) plus run metadata.

    Row fields: ``pair, src, tgt, concept, pos, source_word, references, final, outcome,
    layer_strings, layer_languages`` (one entry per inspected layer, the output layer last),
    ``grid`` (``[layer][step][rank] = [token, prob]``), ``first_token_prob`` (per language, per
    layer: probability of that language's first answer token at the first step),
    ``target_resource``, ``prompt``.
    """

    def __init__(self, rows: list[dict[str, Any]], meta: dict[str, Any]):
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TranslationConfigError(f"ProbeReport rows must be a list of dicts (one per example); got "
                                         f"{type(rows).__name__}.")
        if not isinstance(meta, dict) or not isinstance(meta.get("layers"), list) or not meta["layers"]:
            raise TranslationConfigError("ProbeReport meta must be a dict with the inspected 'layers' (a non-empty list).")
        missing = sorted({k for r in rows for k in _ROW_KEYS if k not in r})
        if missing:
            raise TranslationConfigError(f"ProbeReport rows lack {missing} (rows are written by TranslationProbe.run).")
        n_layers = len(meta["layers"])
        bad = [i for i, r in enumerate(rows) if len(r["layer_languages"]) != n_layers]
        if bad:
            raise TranslationConfigError(f"ProbeReport rows {bad[:5]} have layer_languages of another length than the "
                                         f"{n_layers} layers in meta: the rows and metadata come from different runs.")
        self.rows = rows
        self.meta = meta

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def layers(self) -> list[int]:
        return list(self.meta["layers"])

    # ---- tables -----------------------------------------------------------------------------
    def to_frame(self):
        """One row per example (lists kept as Python lists)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def by_pair(self):
        """Per (source, target): n, accuracy, translation-failure rate, share of failures that are
        translation failures, target-lost and task-failure rates, takeover layer, main
        intermediate language."""
        import pandas as pd

        out = []
        for pair in dict.fromkeys(r["pair"] for r in self.rows):
            rows = [r for r in self.rows if r["pair"] == pair]
            src, tgt = rows[0]["src"], rows[0]["tgt"]
            inter = self._intermediate_languages(rows)
            out.append(dict(pair=pair, src=src, tgt=tgt, target_resource=rows[0]["target_resource"],
                            **_rates([r["outcome"] for r in rows]), takeover_layer=self.takeover_layer(rows),
                            main_intermediate_language=inter.most_common(1)[0][0] if inter else None))
        return pd.DataFrame(out)

    def by_resource(self):
        """The same rates aggregated per target resource level (high, mid, low...)."""
        import pandas as pd

        order = ["high", "mid", "low", "unknown"]
        levels = sorted({r["target_resource"] for r in self.rows}, key=order.index)
        return pd.DataFrame([dict(target_resource=lvl, **_rates([r["outcome"] for r in self.rows
                                                                   if r["target_resource"] == lvl]),
                                  takeover_layer=self.takeover_layer([r for r in self.rows
                                                                      if r["target_resource"] == lvl]))
                             for lvl in levels])

    def language_presence(self, rows: list[dict] | None = None, *, relative: bool = False):
        """Fraction of examples whose layer string is in each language, per layer (rows: layers,
        columns: languages plus ``target``, which counts the example's own target language).
        ``relative`` labels languages relative to each example: ``target``, ``source``, ``pivot``
        (English, when neither), ``other``."""
        import pandas as pd

        rows = self.rows if rows is None else rows
        layers = self.layers
        table = []
        for li, layer in enumerate(layers):
            counts: Counter = Counter()
            for r in rows:
                lang = r["layer_languages"][li]
                if lang is None:
                    continue
                if lang == r["tgt"]:
                    counts["target"] += 1
                if relative:
                    if lang == r["tgt"]:
                        continue
                    counts["source" if lang == r["src"] else "pivot (en)" if lang == "en" else "other"] += 1
                else:
                    counts[lang] += 1
            n = max(1, len(rows))
            table.append({"layer": layer, **{k: v / n for k, v in counts.items()}})
        frame = pd.DataFrame(table).set_index("layer").fillna(0.0)
        return frame

    def on_target_by_layer(self):
        """Per pair, fraction of examples whose layer string is in the target language (rows: layers)."""
        import pandas as pd

        cols = {}
        for pair in dict.fromkeys(r["pair"] for r in self.rows):
            rows = [r for r in self.rows if r["pair"] == pair]
            cols[pair] = [sum(r["layer_languages"][li] == r["tgt"] for r in rows) / len(rows)
                          for li in range(len(self.layers))]
        return pd.DataFrame(cols, index=pd.Index(self.layers, name="layer"))

    def takeover_layer(self, rows: list[dict] | None = None) -> int | None:
        """First layer from which, at every later layer, the target language is decoded more often
        than any single other language (None if it never takes over)."""
        rows = self.rows if rows is None else rows
        if not rows:
            return None
        best = None
        for li in reversed(range(len(self.layers))):
            langs = [(r["layer_languages"][li], r["tgt"]) for r in rows]
            on_target = sum(lang == tgt for lang, tgt in langs)
            rivals = Counter(lang for lang, tgt in langs if lang is not None and lang != tgt)
            if on_target > 0 and on_target > max(rivals.values(), default=0):
                best = self.layers[li]
            else:
                break
        return best

    @staticmethod
    def _intermediate_languages(rows) -> Counter:
        """Non-target languages seen in intermediate layers, counted once per example."""
        c: Counter = Counter()
        for r in rows:
            c.update({lang for lang in r["layer_languages"][:-1] if lang is not None and lang != r["tgt"]})
        return c

    def intermediate_languages(self):
        """Distribution of intermediate (non-target) languages over examples, per pair."""
        import pandas as pd

        data = {pair: self._intermediate_languages([r for r in self.rows if r["pair"] == pair])
                for pair in dict.fromkeys(r["pair"] for r in self.rows)}
        return pd.DataFrame(data).T.fillna(0).astype(int)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: overall rates, per target resource level, and where English (the
        usual pivot) surfaces."""
        overall = _rates([r["outcome"] for r in self.rows])
        per_level = {row["target_resource"]: {k: (round(v, 4) if isinstance(v, float) else v)
                                              for k, v in row.items() if k != "target_resource"}
                     for row in self.by_resource().to_dict("records")}
        presence = self.language_presence(relative=True)
        return dict(
            overall={k: round(v, 4) if isinstance(v, float) else v for k, v in overall.items()},
            by_target_resource=per_level,
            takeover_layer=self.takeover_layer(),
            layers=self.layers,
            pivot_en_share_by_layer={int(k): round(float(v), 4) for k, v in
                                     presence.get("pivot (en)", presence.iloc[:, 0] * 0).items()},
            target_share_by_layer={int(k): round(float(v), 4) for k, v in
                                   presence.get("target", presence.iloc[:, 0] * 0).items()},
        )

    # ---- figures (built by interp.translation.plots) ----------------------------------------
    def plot(self, kind: Literal["heatmap", "presence", "outcomes"] = "heatmap", *,
             metric: Metric = "translation_failure_share"):
        """``heatmap``: source x target grid of ``metric`` ordered by resource level;
        ``presence``: share of examples decoded as target / source / English / other by layer;
        ``outcomes``: outcome shares per target resource level."""
        from interp.translation import plots

        if kind == "heatmap":
            return plots.pair_heatmap(self, metric)
        if kind == "presence":
            return plots.presence_figure(self)
        if kind == "outcomes":
            return plots.outcomes_figure(self)
        raise TranslationConfigError(f"kind={kind!r}: use 'heatmap', 'presence' or 'outcomes'.")

    def select(self, *, pair: str | None = None, outcome: str | None = None) -> list[int]:
        """Indices of the rows of one pair and/or outcome (``None`` = any)."""
        return [i for i, r in enumerate(self.rows)
                if (pair is None or r["pair"] == pair) and (outcome is None or r["outcome"] == outcome)]

    def plot_example(self, index: int = 0):
        """Layer x generation-step grid of one example (:func:`interp.translation.plots.example_grid_figure`):
        each cell's top-1 token, rows coloured by the language of that layer's decoded string."""
        from interp.translation.plots import example_grid_figure

        return example_grid_figure(self, index)

    def plot_example_probs(self, index: int = 0):
        """Per-layer probability (first generated step) of the target word's first token versus the
        best word of any other language and English's (:func:`interp.translation.plots.example_probs_figure`)."""
        from interp.translation.plots import example_probs_figure

        return example_probs_figure(self, index)

    def __repr__(self) -> str:
        s = _rates([r["outcome"] for r in self.rows])
        pairs = len({r["pair"] for r in self.rows})
        return (f"ProbeReport({len(self)} examples, {pairs} pairs, model {self.meta.get('model')!s}, "
                f"{self.meta.get('lens')} lens: accuracy {s['accuracy']:.2f}, translation failures "
                f"{s['translation_failure_share']:.2f} of failures)")

    def _repr_html_(self) -> str:
        s = _rates([r["outcome"] for r in self.rows])
        pairs = len({r["pair"] for r in self.rows})
        table = self.by_resource().to_html(index=False, float_format=lambda v: f"{v:.2f}")
        return (f"<div><b>ProbeReport</b>: {len(self)} examples, {pairs} pairs, model {html.escape(str(self.meta.get('model')))}, "
                f"{self.meta.get('lens')} lens; accuracy {s['accuracy']:.2f}, translation failures "
                f"{s['translation_failure_share']:.2f} of failures{table}</div>")

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the report: ``.json`` (everything) or ``.parquet`` (rows; metadata in the schema)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps({"format": FORMAT, "meta": self.meta, "rows": self.rows}, ensure_ascii=False))
        elif path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            cols = {k: [json.dumps(r[k], ensure_ascii=False) for r in self.rows] for k in self.rows[0]} if self.rows else {}
            table = pa.table(cols).replace_schema_metadata({"format": FORMAT, "meta": json.dumps(self.meta)})
            pq.write_table(table, path)
        else:
            raise TranslationConfigError(f"Save a ProbeReport as .json or .parquet, not {path.suffix or 'no suffix'!r}.")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ProbeReport":
        """Read a report written by :meth:`save`; a missing, damaged or incomplete file raises
        :class:`~interp.translation.errors.TranslationLoadError` naming it."""
        path = Path(path)
        if not path.is_file():
            raise missing_file(TranslationLoadError, f"No report at {path}.")
        if path.suffix == ".json":
            try:
                data = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise TranslationLoadError(f"{path} is not valid JSON ({err}); save the report again.") from err
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                got = data.get("format") if isinstance(data, dict) else type(data).__name__
                raise TranslationLoadError(f"{path} is not a ProbeReport file (format {got!r}, expected {FORMAT!r}).")
            return cls._checked(path, data.get("rows"), data.get("meta"))
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                table = pq.read_table(path)
            except Exception as err:  # pyarrow raises ArrowInvalid / OSError for damaged files
                raise TranslationLoadError(f"{path} is not a readable parquet file ({type(err).__name__}: {err}).") from err
            meta = table.schema.metadata or {}
            if meta.get(b"format", b"").decode() != FORMAT:
                raise TranslationLoadError(f"{path} is not a ProbeReport parquet file (missing format {FORMAT!r}).")
            try:
                cols = table.to_pydict()
                n = len(next(iter(cols.values()))) if cols else 0
                rows = [{k: json.loads(v[i]) for k, v in cols.items()} for i in range(n)]
                run_meta = json.loads(meta[b"meta"].decode())
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise TranslationLoadError(f"{path} holds malformed ProbeReport columns ({err}).") from err
            return cls._checked(path, rows, run_meta)
        raise TranslationLoadError(f"Load a ProbeReport from .json or .parquet, not {path.suffix!r}.")

    @classmethod
    def _checked(cls, path: Path, rows: Any, meta: Any) -> "ProbeReport":
        try:
            return cls(rows, meta)
        except TranslationConfigError as err:
            raise TranslationLoadError(f"{path}: {err}") from err
