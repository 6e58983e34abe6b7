"""The evaluation of :mod:`.evaluate`, sharded over ``torch.distributed`` processes.

No scheduler of our own: ``torch.distributed`` (gloo on CPU, NCCL on GPUs) provides the
process group, and either :func:`run_distributed` (``torch.multiprocessing.spawn``, one
machine) or ``torchrun`` (one or many machines) starts the processes.

Each rank evaluates every ``world_size``-th pending image (a ``DistributedSampler``-style
shard without padding duplicates) into its own ``<out stem>.rank<r>.jsonl``, flushed and
fsynced per batch. After a barrier the records are gathered on rank 0, which merges them
with ``out`` in dataset order (deduplicated per (image, method)), replaces ``out``
atomically and removes the rank files. A run that was interrupted resumes from ``out`` and
from every rank file: the done pairs are shared between ranks, so resuming also works with
another world size or without a shared filesystem.

Across machines::

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m cam_widgets.metrics --model efficientnet_lite0 --root images/ \\
        --labels labels.csv --out results.jsonl --methods gradcam,gradcam++
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import sys
import time
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist

from ..data.files import atomic_write, check_output
from ..errors import CamWidgetsError, InvalidParameterError, Received, expected, one_line
from .evaluate import done_pairs, make_plan, pending_indices, run_plan
from .records import read_records, summarize, write_records

__all__ = ["evaluate_distributed", "run_distributed", "rank_path", "main"]

_OUT_HINT = "pick another output file ('out'; CLI: --out)"


def rank_path(out, rank: int) -> pathlib.Path:
    """``results.jsonl`` -> ``results.rank3.jsonl``: where rank ``rank`` writes."""
    out = pathlib.Path(out)
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return out.with_name(f"{stem}.rank{rank}.jsonl")


def _rank_files(out) -> list[pathlib.Path]:
    out = pathlib.Path(out)
    stem = out.name[: -len(".jsonl")] if out.name.endswith(".jsonl") else out.name
    return sorted(p for p in out.parent.glob(f"{stem}.rank*.jsonl") if p.name[len(stem) + 5 : -6].isdigit())


def evaluate_distributed(
    explainer,
    dataset,
    *,
    out="results.jsonl",
    resume: bool = True,
    methods: Sequence[str] = ("gradcam",),
    pin_memory: bool | None = None,
    progress=None,
    **kwargs,
) -> dict:
    """:func:`~cam_widgets.metrics.evaluate.evaluate` inside an initialised process group.

    Every rank calls it with the same arguments (its own explainer on its own device);
    every rank gets the summary of the merged ``out`` (written by rank 0).
    """
    if not dist.is_available() or not dist.is_initialized():
        raise InvalidParameterError(
            "evaluate_distributed needs torch.distributed initialised (init_process_group); use "
            "run_distributed(...) on one machine, torchrun, or evaluate(...) for one process"
        )
    rank, world = dist.get_rank(), dist.get_world_size()
    plan = make_plan(
        explainer,
        dataset,
        methods,
        kwargs.pop("layer", None),
        kwargs.pop("target", "label"),
        kwargs.pop("metrics", ("pointing_game", "energy", "average_drop")),
        kwargs.pop("batch_size", 16),
        kwargs.pop("num_workers", 0),
        kwargs.pop("on_error", "raise"),
        kwargs.pop("method_params", None),
        kwargs.pop("metric_params", None),
    )
    if kwargs:
        raise InvalidParameterError(f"unexpected arguments {', '.join(sorted(kwargs))}")
    out = pathlib.Path(out)
    mine = rank_path(out, rank)
    _check_outputs_everywhere(out, mine, world)
    dist.barrier()
    if not resume:
        if rank == 0:
            for path in [out] + _rank_files(out):
                path.unlink(missing_ok=True)
        mine.unlink(missing_ok=True)
        dist.barrier()
    # what this rank can see as done (its file repaired), shared with every rank
    seen = read_records(out) + [r for p in _rank_files(out) if p != mine for r in read_records(p)]
    seen += read_records(mine, repair=True)
    local = done_pairs(seen, plan)
    gathered: list = [None] * world
    dist.all_gather_object(gathered, sorted(local))
    done = {tuple(pair) for part in gathered for pair in part}
    pending = pending_indices(dataset, plan, done)
    shard = pending[rank::world]
    started = time.perf_counter()
    computed = run_plan(explainer, dataset, plan, shard, mine, done, pin_memory, progress)
    seconds = time.perf_counter() - started
    dist.barrier()
    # merge on rank 0: every rank sends the records of its own file
    records = read_records(mine)
    collected: list | None = [None] * world if rank == 0 else None
    dist.gather_object(records, collected, dst=0)
    summary = None
    if rank == 0:
        pieces = [read_records(out)] + [read_records(p) for p in _rank_files(out)] + list(collected)
        merged = _merge(pieces, plan.names)
        with atomic_write(out, "w", _OUT_HINT) as handle:  # out replaced only when complete
            write_records(handle, merged)
        summary = summarize(merged)
    dist.barrier()  # out is complete before any rank file goes
    mine.unlink(missing_ok=True)
    if rank == 0:
        for path in _rank_files(out):
            path.unlink(missing_ok=True)
    times: list = [None] * world
    dist.all_gather_object(times, (computed, seconds, len(shard)))
    box = [summary]
    dist.broadcast_object_list(box, src=0)
    slowest = max(t[1] for t in times)
    return dict(
        box[0],
        out=str(out),
        computed=sum(t[0] for t in times),
        skipped=len(done),
        seconds=slowest,
        world_size=world,
        images_per_second=len(pending) / slowest if pending and slowest > 0 else None,
    )


def _check_outputs_everywhere(out: pathlib.Path, mine: pathlib.Path, world: int) -> None:
    """Every rank checks ``out`` and its own rank file (regular files or none yet, in a folder
    that takes a new file; nothing read) and every rank raises the first problem found: one
    rank alone raising would leave the others waiting at the next barrier."""
    problem = None
    try:
        for path in (out, mine):
            check_output(path, _OUT_HINT)
    except CamWidgetsError as exc:
        problem = str(exc)
    problems: list = [None] * world
    dist.all_gather_object(problems, problem)
    found = next((p for p in problems if p is not None), None)
    if found is not None:
        raise InvalidParameterError(found)


def _merge(pieces, names: Sequence[str]) -> list[dict]:
    """Records of every piece, once per (image, method), in dataset then method order."""
    kept: dict[tuple[str, str], dict] = {}
    for piece in pieces:
        for record in piece:
            kept.setdefault((str(record["image"]), record["method"]), record)
    order = {name: i for i, name in enumerate(names)}
    return sorted(
        kept.values(),
        key=lambda r: (
            int(r.get("index", 0)),
            str(r["image"]),
            order.get(r["method"], len(order)),
            r["method"],
        ),
    )


# --------------------------------------------------------------------------- one machine
def free_port() -> int:
    """A TCP port free on this machine now (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def default_backend(world_size: int = 1) -> str:
    """NCCL when every process can have a GPU of its own, else gloo."""
    if dist.is_nccl_available() and torch.cuda.device_count() >= world_size >= 1:
        return "nccl"
    return "gloo"


def run_distributed(
    world_size: int,
    explainer_factory: Callable,
    dataset_factory: Callable,
    *,
    backend: str | None = None,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    threads: int | None = None,
    **evaluate_kwargs,
) -> dict:
    """Run :func:`evaluate_distributed` in ``world_size`` processes on this machine.

    Args:
        explainer_factory: ``explainer_factory()`` -> Explainer, called in each process
            (after ``torch.cuda.set_device(rank)`` on GPUs, so a zoo explainer with
            ``device=None`` lands on the rank's GPU). Must be picklable: a module-level
            function or a ``functools.partial`` of one.
        dataset_factory: ``dataset_factory(explainer)`` -> Dataset, called in each process.
        backend: ``"gloo"`` or ``"nccl"`` (None: NCCL when there is a GPU per process,
            else gloo).
        threads: torch threads per process on CPU (None: CPU cores / world_size).
        evaluate_kwargs: as :func:`~cam_widgets.metrics.evaluate.evaluate` (``out``,
            ``methods``, ``metrics``, ``batch_size``, ``resume``...).

    Returns:
        the summary of the merged ``out`` as :func:`evaluate_distributed` returns it, with
        ``seconds`` the wall time (process start included) and ``evaluate_seconds`` the
        slowest rank's evaluation time.
    """
    import torch.multiprocessing as mp

    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise InvalidParameterError(expected("world_size", "an int >= 1", world_size))
    backend = backend or default_backend(world_size)
    if backend == "nccl" and torch.cuda.device_count() < world_size:
        raise InvalidParameterError(
            f"backend 'nccl' needs one GPU per process ({world_size} asked, "
            f"{torch.cuda.device_count()} visible); use backend='gloo' or fewer processes"
        )
    port = int(master_port or free_port())
    threads = threads or max(1, (os.cpu_count() or 1) // world_size)
    out = evaluate_kwargs.setdefault("out", "results.jsonl")
    results = mp.get_context("spawn").SimpleQueue()
    started = time.perf_counter()
    mp.spawn(
        _worker,
        nprocs=world_size,
        join=True,
        args=(
            world_size,
            backend,
            master_addr,
            port,
            threads,
            explainer_factory,
            dataset_factory,
            evaluate_kwargs,
            results,
        ),
    )
    seconds = time.perf_counter() - started
    summary = results.get() if not results.empty() else dict(summarize(out), out=str(out))
    pending = summary.get("images_per_second", 0) and summary["images_per_second"] * summary["seconds"]
    return dict(
        summary,
        seconds=seconds,
        evaluate_seconds=summary.get("seconds"),
        images_per_second=pending / seconds if pending and seconds > 0 else None,
    )


def _worker(
    rank, world_size, backend, addr, port, threads, explainer_factory, dataset_factory, kwargs, results
) -> None:
    os.environ.update(
        MASTER_ADDR=str(addr),
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    if backend == "nccl":
        torch.cuda.set_device(rank)
    else:
        torch.set_num_threads(threads)
    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world_size)
    try:
        explainer = explainer_factory()
        summary = evaluate_distributed(explainer, dataset_factory(explainer), **kwargs)
        if rank == 0:
            results.put(summary)
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------- torchrun
def main(argv: Sequence[str] | None = None, prog: str = "python -m cam_widgets.metrics") -> int:
    """``python -m cam_widgets.metrics`` or ``cam-widgets evaluate`` (alone, or under torchrun:
    RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT come from the environment)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Evaluate explanation methods over an image folder."
    )
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument(
        "--weights", metavar="PATH", help="state-dict file to load instead of the usual weights"
    )
    parser.add_argument("--root", required=True, help="image folder")
    parser.add_argument("--labels", help="CSV path,class_id[,x0,y0,x1,y1]")
    parser.add_argument("--out", default="results.jsonl")
    parser.add_argument("--methods", default="gradcam", help="comma-separated")
    parser.add_argument("--metrics", default="pointing_game,energy,average_drop")
    parser.add_argument("--layer")
    parser.add_argument(
        "--target", choices=("label", "top1"), default=None, help="default: label with --labels, else top1"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--backend", choices=("gloo", "nccl"))
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    from ..explainer import Explainer
    from ..models import load_model
    from .evaluate import ImageFolderDataset, evaluate

    try:
        world, rank, local_rank = launcher_environment(os.environ)
    except CamWidgetsError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    use_cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    device = f"cuda:{local_rank}" if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    elif world > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    kwargs = dict(
        methods=[m for m in args.methods.split(",") if m],
        metrics=[m for m in args.metrics.split(",") if m],
        layer=args.layer,
        target=args.target or ("label" if args.labels else "top1"),
        out=args.out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        resume=not args.no_resume,
    )
    try:
        # the output first (nothing read: a FIFO or /dev/zero would block or never end) and
        # before the model is built, so a bad --out costs no model load
        check_output(args.out, "pick another --out")
        model = args.model if args.weights is None else load_model(args.model, weights_path=args.weights)
        explainer = Explainer(model, device=device)
        dataset = ImageFolderDataset(args.root, explainer, labels=args.labels)
        if world > 1:
            join(args.backend or ("nccl" if use_cuda else "gloo"), world, rank)
            try:
                summary = evaluate_distributed(explainer, dataset, **kwargs)
            finally:
                dist.destroy_process_group()
        else:
            summary = evaluate(explainer, dataset, **kwargs)
    except CamWidgetsError as exc:  # one line, also when it was raised in a DataLoader worker
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    if rank == 0:
        print(json.dumps(summary, indent=2))
    return 0


#: Seconds the ranks of a run wait for each other to join (torch's default is 30 minutes:
#: a rank started without the others hung that long); CAM_WIDGETS_RENDEZVOUS_SECONDS sets it.
RENDEZVOUS_SECONDS = 60.0


def launcher_environment(env) -> tuple[int, int, int]:
    """(world size, rank, local rank) from a launcher's variables (torchrun sets them all), or
    one line naming what is missing or wrong: WORLD_SIZE alone would wait forever for ranks
    nobody started."""

    def number(name: str, default: str | None) -> int:
        text = env.get(name, default)
        if text is None:
            raise InvalidParameterError(
                f"WORLD_SIZE={env.get('WORLD_SIZE')} is set but {name} is not: start every rank "
                f"with a launcher (torchrun --nproc-per-node N -m cam_widgets.metrics ...), or "
                f"unset WORLD_SIZE to run alone"
            )
        try:
            return int(str(text).strip())
        except ValueError:
            raise InvalidParameterError(
                expected(name, "a whole number, as torchrun sets it", Received(repr(text)))
            ) from None

    world = number("WORLD_SIZE", "1")
    if world < 1:
        raise InvalidParameterError(expected("WORLD_SIZE", "1 or more", Received(str(world))))
    if world == 1:
        return 1, 0, number("LOCAL_RANK", "0")
    rank = number("RANK", None)
    if not 0 <= rank < world:
        raise InvalidParameterError(
            expected("RANK", f"a rank in [0, WORLD_SIZE={world})", Received(str(rank)))
        )
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not env.get(name):
            raise InvalidParameterError(
                f"WORLD_SIZE={world} is set but {name} is not: start every rank with a launcher "
                f"(torchrun sets MASTER_ADDR and MASTER_PORT), or unset WORLD_SIZE to run alone"
            )
    number("MASTER_PORT", None)  # (a port is a number)
    rendezvous_seconds(env)
    return world, rank, number("LOCAL_RANK", str(rank))


def join(backend: str, world: int, rank: int) -> None:
    """Join the run's process group: the ranks meet within :data:`RENDEZVOUS_SECONDS` (one
    line when the others never come, instead of torch's 30-minute wait or its multi-line
    store error); the run's collectives then keep torch's own timeout (a rank done long before
    another waits for it at the final barrier)."""
    import datetime

    seconds = rendezvous_seconds(os.environ)
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    try:  # the meeting alone is short: a store whose master waits for every rank
        store = dist.TCPStore(
            host,
            port,
            world_size=world,
            is_master=rank == 0,
            timeout=datetime.timedelta(seconds=seconds),
            wait_for_workers=True,
        )
    except (RuntimeError, ValueError, OSError, TimeoutError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise InvalidParameterError(
            f"rank {rank} of {world} could not join the others at {host}:{port} within "
            f"{seconds:g} s ({first}); start all {world} ranks together (torchrun), or unset "
            f"WORLD_SIZE to run alone"
        ) from None
    store.set_timeout(datetime.timedelta(minutes=30))  # torch's default for the run itself
    dist.init_process_group(backend, store=store, rank=rank, world_size=world)


def rendezvous_seconds(env) -> float:
    """CAM_WIDGETS_RENDEZVOUS_SECONDS (default :data:`RENDEZVOUS_SECONDS`), checked."""
    text = env.get("CAM_WIDGETS_RENDEZVOUS_SECONDS")
    if text is None:
        return RENDEZVOUS_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < 86400:
        raise InvalidParameterError(
            expected(
                "CAM_WIDGETS_RENDEZVOUS_SECONDS",
                "seconds between 0 and 86400",
                Received(repr(text)),
                "set e.g. CAM_WIDGETS_RENDEZVOUS_SECONDS=60",
            )
        )
    return seconds
