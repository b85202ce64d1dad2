"""``seeds_nb.ray``: ``client.map`` over a Ray Dataset, across a cluster, with the same cache, rate limits,
budgets, cost and carbon, and the live panel on the driver.

    import ray, seeds_nb.ray
    from seeds_nb import OpenAIClient
    spec = seeds_nb.ray.ClientSpec(OpenAIClient, model="gpt-4.1-mini", requests_per_minute=3000,
                                   cache_dir="/shared/cache")
    out = seeds_nb.ray.map(ray.data.read_parquet("s3://.../reviews"), "Classify: {text}", client=spec,
                           concurrency=8, sink="/shared/classified")
    result = await seeds_nb.ray.run(ds, "Classify: {text}", client=spec)   # with the panel

An optional extra (``pip install 'seeds_nb[ray]'``); ``import seeds_nb`` never imports Ray. The design
(one gate actor, one progress actor, one client per worker actor) is in docs/scale-out.md.
"""

from __future__ import annotations

try:
    import ray
    import ray.data  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError("seeds_nb.ray needs Ray Data: pip install 'seeds_nb[ray]'") from exc

from ._map import RayMap, RayResult, map, run
from ._spec import ClientSpec

__all__ = ["ClientSpec", "RayMap", "RayResult", "map", "run"]
