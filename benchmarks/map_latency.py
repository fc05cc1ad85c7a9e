"""Latent-map latency: time to the first UMAP map of 10,000 sentences, and to re-open it from the caches.

Adds a `latent_map` measurement to benchmarks/latency.py (same run selection, same JSON report):

- first map, as the app does it in a fresh process: encode the sentences and greedily decode their
  reconstructions (`vae_core.subset_encodings.encode_and_reconstruct`, saved to disk), `import umap`, fit UMAP
  (n_epochs=200) and write the disk cache (`vae_core.projection.cached_projection`);
- re-open: the same map and encodings from the disk caches (a new server process), and from the
  per-process memory cache (a page re-opened or a colour switched);
- the page's own per-rerun work on the cached map: building the 10,000-point figure and serialising it
  (what a colour change costs), and placing one new sentence (UMAP reducer, then k-NN after a disk load).

    python benchmarks/map_latency.py [--run PATH] [--threads N]

On a shared, loaded machine pass --threads 1 and read `cpu_s` (process CPU time) beside the wall times:
UMAP runs single-threaded (it is seeded), so its CPU time is close to the wall time on an idle machine.

Or from latency.py's caller: `import map_latency` registers the measurement before `latency.main()`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import latency  # noqa: E402

N_EPOCHS = 200  # UMAP's own choice above 10,000 points; stated so the figure does not depend on N


def measure_latent_map(ctx: latency.Context) -> dict:
    """Time to first map (encode + reconstruct + UMAP fit + save) and to re-open it (disk, memory)."""
    import plotly.io

    from ui import map_figures
    from vae_core.encoding import posterior_means
    from vae_core.map_cache import ProjectionStore, map_key
    from vae_core.projection import cached_projection
    from vae_core.subset_encodings import encode_and_reconstruct, load_encoded, save_encoded
    from vae_core.subsets import content_id

    run, sentences = ctx.run, ctx.sentences
    out: dict = {"sentences": len(sentences), "method": "umap", "n_components": 2, "n_epochs": N_EPOCHS}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "projections"
        c0, t0 = time.process_time(), time.perf_counter()
        posterior_means(
            run.model, run.vocab, sentences, lowercase=run.train_config.lowercase, max_len=run.train_config.max_len
        )
        t_encode_only, c_encode_only = time.perf_counter() - t0, time.process_time() - c0
        c0, t0 = time.process_time(), time.perf_counter()
        enc = encode_and_reconstruct(run, sentences)
        save_encoded(enc, Path(tmp) / "encodings" / "e.npz")
        t_encode, c_encode = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        import umap  # noqa: F401  (numba: slow first import, part of the first map)

        t_import = time.perf_counter() - t0
        key = map_key(run.path, content_id(sentences), "umap", 2, 0, {"n_epochs": N_EPOCHS})
        c0, t0 = time.process_time(), time.perf_counter()
        proj, was_cached = cached_projection(enc.mu, cache, key, "umap", 2, 0, n_epochs=N_EPOCHS)
        t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
        assert not was_cached
        t0 = time.perf_counter()
        placed = proj.transform(enc.mu[:1])  # first call compiles UMAP's transform
        t_place_reducer = time.perf_counter() - t0
        t0 = time.perf_counter()
        proj.transform(enc.mu[1:2])
        t_place_reducer_2 = time.perf_counter() - t0

        t0 = time.perf_counter()
        enc_loaded = load_encoded(Path(tmp) / "encodings" / "e.npz", len(sentences))
        t_enc_disk = time.perf_counter() - t0
        assert enc_loaded is not None and enc_loaded.reconstructions == enc.reconstructions
        t0 = time.perf_counter()
        loaded, was_cached = cached_projection(enc.mu, cache, key, "umap", 2, 0, n_epochs=N_EPOCHS)
        t_disk = time.perf_counter() - t0
        assert was_cached and np.allclose(loaded.coords, proj.coords)
        store = ProjectionStore(4)
        store.put(key, loaded)
        t0 = time.perf_counter()
        assert store.get(key) is loaded
        t_memory = time.perf_counter() - t0
        t0 = time.perf_counter()
        loaded.transform(enc.mu[:1])
        t_place_knn = time.perf_counter() - t0

        t0 = time.perf_counter()
        hover = map_figures.hover_lines(sentences, enc.reconstructions)
        fig = map_figures.map_figure(
            loaded.coords, hover, map_figures.ColorSpec("length", "continuous", enc.lengths.tolist())
        )
        t_figure = time.perf_counter() - t0
        t0 = time.perf_counter()
        spec = plotly.io.to_json(fig, validate=False)
        t_json = time.perf_counter() - t0
        npz = next(cache.glob("*.npz"))
        out.update(
            {
                "first_map_s": round(t_encode + t_import + t_fit, 2),
                "encode_and_reconstruct_s": round(t_encode, 2),
                "encode_only_s": round(t_encode_only, 2),
                "umap_import_s": round(t_import, 2),
                "umap_fit_and_save_s": round(t_fit, 2),
                "cpu_s": {
                    "encode_only": round(c_encode_only, 2),
                    "encode_and_reconstruct": round(c_encode, 2),
                    "umap_fit_and_save": round(c_fit, 2),
                },
                "reopen_projection_from_disk_s": round(t_disk, 4),
                "reopen_encodings_from_disk_s": round(t_enc_disk, 4),
                "reopen_new_process_s": round(t_enc_disk + t_disk, 3),
                "reopen_from_memory_s": round(t_memory, 6),
                "figure_build_s": round(t_figure, 3),
                "figure_json_s": round(t_json, 3),
                "figure_json_mb": round(len(spec) / 1e6, 2),
                "place_one_sentence_reducer_first_s": round(t_place_reducer, 3),
                "place_one_sentence_reducer_s": round(t_place_reducer_2, 4),
                "place_one_sentence_knn_s": round(t_place_knn, 4),
                "disk_cache_mb": round(npz.stat().st_size / 1e6, 2),
                "placed_inside_map": bool(
                    np.all((placed >= proj.coords.min(0) - 1) & (placed <= proj.coords.max(0) + 1))
                ),
                "exact_reconstructions": round(float(np.mean(enc.correct)), 3),
            }
        )
    return out


latency.register_measurement("latent_map", measure_latent_map)

if __name__ == "__main__":
    args = sys.argv[1:]
    latency.main(args if "--only" in args else [*args, "--only", "latent_map"])
