"""The main job behind ``make demo`` / ``interp demo``: a zoo smoke run that measures the default
model on its planted tasks and exports that figure, then every notebook executed headless with
its HTML and figures written to ``out/``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import plotly.graph_objects as go

from interp.viz.figures import export, paper_layout

__all__ = ["DemoResult", "GALLERY", "zoo_smoke_figure", "write_gallery", "run_demo"]

# The README gallery: one figure per method, by the name its notebook exports it under in
# ``OUT_DIR`` (``out/figures`` in the demo) -> the gallery file's name.
GALLERY: dict[str, str] = {
    "01_example": "translation_barrier.png",
    "lorsa_induction_scores": "lorsa.png",
    "corrsteer_accuracy": "corrsteer.png",
    "thr_pass_at_k": "thr.png",
}


@dataclass
class DemoResult:
    out_dir: Path
    figures: list[Path] = field(default_factory=list)
    gallery: list[Path] = field(default_factory=list)
    notebooks: dict[str, float] = field(default_factory=dict)  # name -> seconds

    def __str__(self) -> str:
        lines = [f"Demo output in {self.out_dir}:"]
        lines += [f"  figure   {p}" for p in self.figures]
        lines += [f"  notebook {n} ({s:.0f} s)" for n, s in self.notebooks.items()]
        lines += [f"  gallery  {p}" for p in self.gallery]
        return "\n".join(lines)


def zoo_smoke_figure(name: str = "toy-lm", *, n_items: int = 50, seed: int = 1234) -> go.Figure:
    """Load a zoo model, measure its greedy accuracy on each planted task now, and plot it beside
    the accuracy its card records."""
    from interp import zoo
    from interp.zoo import tasks

    model = zoo.load(name, device="cpu")
    card = zoo.card(name)
    items = [item for t in tasks.TASKS for item in tasks.make_items(t, n_items, seed)]
    accuracy = tasks.accuracy_by_task(model, items)
    measured = {t: accuracy[t] for t in tasks.TASKS}
    recorded = {t: card.get("evaluation", {}).get("accuracy", {}).get(t) for t in tasks.TASKS}
    fig = go.Figure(
        [
            go.Bar(name=f"measured now (n={n_items})", x=list(measured), y=list(measured.values())),
            go.Bar(name="model card (n=100)", x=list(recorded), y=[v if v is not None else 0 for v in recorded.values()]),
        ]
    )
    fig.update_layout(
        barmode="group", title=f"{name}: greedy accuracy on planted tasks", yaxis=dict(title="accuracy", range=[0, 1])
    )
    paper_layout(fig, "single", height_in=2.6)
    # Every task labelled (plotly skips category labels when they crowd) and the legend on top.
    fig.update_layout(
        legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
        xaxis=dict(tickmode="array", tickvals=list(measured), ticktext=list(measured), tickangle=-45),
        title=None,
    )
    return fig


def write_gallery(figures_dir: str | os.PathLike[str], gallery_dir: str | os.PathLike[str], *,
                  width_px: int = 900, figures: dict[str, str] | None = None) -> list[Path]:
    """Copy each gallery figure's PNG from ``figures_dir`` into ``gallery_dir``, shrunk to at most
    ``width_px`` wide (the exported PNGs are 300 dpi print files, too heavy for a README).

    >>> write_gallery("out/figures", "docs/gallery")  # doctest: +SKIP  (after `interp demo`)
    """
    from PIL import Image

    figures = GALLERY if figures is None else figures
    src_dir, dst_dir = Path(figures_dir), Path(gallery_dir)
    missing = [f"{stem}.png" for stem in figures if not (src_dir / f"{stem}.png").is_file()]
    if missing:
        raise FileNotFoundError(f"Gallery figures missing from {src_dir}: {', '.join(missing)}. Run the notebooks "
                                "first (`interp demo` exports them) or pass the folder they were exported to.")
    dst_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, name in figures.items():
        with Image.open(src_dir / f"{stem}.png") as image:
            image = image.convert("RGB")  # plotly's PNGs carry an alpha channel the README does not need
            if image.width > width_px:
                image = image.resize((width_px, round(image.height * width_px / image.width)), Image.LANCZOS)
            # 256 colours keep flat-coloured plots sharp at a fraction of the size
            image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(dst_dir / name, optimize=True)
        written.append(dst_dir / name)
    return written


def run_demo(
    out_dir: str | os.PathLike[str] = "out",
    *,
    notebooks: list[str] | None = None,
    model: str = "toy-lm",
    progress: bool = True,
    gallery_dir: str | os.PathLike[str] | None = None,
    notebook_dir: str | os.PathLike[str] | None = None,
) -> DemoResult:
    """Run the zoo smoke figure and every notebook (or those named) headless into ``out_dir``, then
    write the README gallery into ``gallery_dir`` (default ``out_dir/gallery``) when every notebook ran.
    Notebooks are read from ``notebook_dir`` (default ``./notebooks``, see :func:`interp.app.paths.notebook_dir`)."""
    from tqdm.auto import tqdm

    from interp.core.progress import bar_disabled

    from interp.app.notebooks import execute_notebook
    from interp.app.paths import notebook_dir as find_notebooks

    out = Path(out_dir).resolve()
    (out / "figures").mkdir(parents=True, exist_ok=True)
    result = DemoResult(out_dir=out)
    result.figures += export(zoo_smoke_figure(model), out / "figures" / "zoo_smoke")
    paths = sorted(find_notebooks(notebook_dir).glob("[0-9][0-9]_*.ipynb"))
    if notebooks:
        paths = [p for p in paths if any(n in p.name for n in notebooks)]
    for path in tqdm(paths, desc="notebooks", disable=bar_disabled(progress)):
        run = execute_notebook(path, parameters={"OUT_DIR": str(out / "figures")}, out_dir=out / "notebooks")
        result.notebooks[path.name] = run.seconds
    result.figures += sorted(p for p in (out / "figures").glob("*") if p.suffix in {".png", ".pdf", ".svg"}
                             and p not in result.figures)
    if not notebooks:
        result.gallery = write_gallery(out / "figures", gallery_dir if gallery_dir is not None else out / "gallery")
    return result
