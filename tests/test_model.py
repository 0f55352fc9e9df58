"""Tests for doppelnb.model that the notebook does not run: bad input, seeded reproducibility, and the
distributed losses on 2 CPU processes (gloo) against one process holding the whole batch."""
import gc
import math
import time

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn as nn

from doppelnb.model import ENCODERS, ContrastiveModel, ProjectionHead, as_patches, build_encoder, build_model
from doppelnb.losses import LOSSES, align_uniform, gather_with_grad, get_loss, nt_xent, world_size

WORLD = 2
N, D = 8, 16  # global pairs and embedding size of the distributed test


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("shape", [(96, 64), (2, 2, 96, 64), (2, 1, 1, 96, 64), (0, 96, 64)])
def test_encoder_rejects_bad_shapes(shape):
    enc = build_encoder("small_cnn")
    with pytest.raises(ValueError, match="SmallCNN"):
        enc(torch.zeros(shape))


def test_encoder_rejects_non_tensors_and_integers():
    with pytest.raises(ValueError, match="tensor"):
        as_patches([[0.0]])
    with pytest.raises(ValueError, match="floating"):
        build_encoder("resnet18")(torch.zeros(2, 1, 96, 64, dtype=torch.int64))


@pytest.mark.parametrize("name,shape", [("crnn", (2, 1, 7, 96)), ("crnn", (2, 1, 96, 39)), ("vgglike", (2, 1, 7, 64))])
def test_encoder_minimum_patch(name, shape):
    with pytest.raises(ValueError, match="minimum"):
        build_encoder(name)(torch.zeros(shape))


def test_encoder_smallest_patches_work():
    for name, enc in ((n, build_encoder(n).eval()) for n in ENCODERS):
        x = torch.randn(2, 1, max(enc.min_frames, 1), max(enc.min_bands, 1))
        with torch.no_grad():
            assert enc(x).shape == (2, enc.embed_dim), name


def test_build_errors():
    with pytest.raises(ValueError, match="resnet18"):
        build_encoder("ResNet-50")
    with pytest.raises(ValueError, match="unknown name"):
        build_encoder(None)
    with pytest.raises(ValueError, match="options"):
        build_model("vgglike", head=True, depth=3)
    with pytest.raises(ValueError, match="merge"):
        build_encoder("crnn", merge="sum")
    with pytest.raises(ValueError, match="channels"):
        build_encoder("small_cnn", channels=(32,))
    assert build_encoder("RESNET18").embed_dim == 512  # names are case-insensitive


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_loss_bad_input(loss):
    fn = get_loss(loss)
    z = torch.randn(4, 8)
    cases = [((z, z[:, :4]), "different shapes"), ((z, z[:3]), "different shapes"), ((z[0], z[0]), r"\[batch, dim\]"),
             ((z[:1], z[:1]), "no negatives"), ((z[:0], z[:0]), "no negatives"),
             ((z, torch.full_like(z, float("nan"))), "non-finite"), ((torch.full_like(z, -float("inf")), z), "non-finite"),
             ((z.int(), z.int()), "floating"), ((z.numpy(), z), "tensors")]
    for args, message in cases:
        with pytest.raises(ValueError, match=message):
            fn(*args)
        with pytest.raises(ValueError, match=loss):  # the message names the loss
            fn(*args)


def test_loss_bad_options():
    z = torch.randn(4, 8)
    for tau in (0, -0.1, float("nan"), float("inf"), "warm", None):
        with pytest.raises(ValueError, match="tau"):
            nt_xent(z, z, tau)
    with pytest.raises(ValueError, match="alpha"):
        align_uniform(z, z, alpha=0)
    with pytest.raises(ValueError, match="not initialized"):
        nt_xent(z, z, distributed=True)
    with pytest.raises(ValueError, match="nt_xent"):
        get_loss("ntxent")
    with pytest.raises(ValueError, match="options are"):
        get_loss("align_uniform", tau=0.2)


def with_targets(fn):
    "A registered loss as `(z1, z2) → loss`: a loss that reads targets (the pitch offset) gets some, sized to the views."
    if not getattr(getattr(fn, "module", None), "uses_targets", False): return fn
    return lambda z1, z2: fn(z1, z2, torch.linspace(-1, 1, len(z1)), dim=z1.shape[1])


def test_losses_in_half_precision_and_autocast():
    z1, z2 = torch.randn(16, 32), torch.randn(16, 32)
    for fn in map(with_targets, LOSSES.values()):
        full = fn(z1, z2)
        assert fn(z1.bfloat16(), z2.bfloat16()).dtype == torch.float32
        torch.testing.assert_close(fn(z1.bfloat16(), z2.bfloat16()), full, atol=0.05, rtol=0.02)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert fn(z1, z2).dtype == torch.float32
            torch.testing.assert_close(fn(z1, z2), full)


def test_zero_embedding_is_finite():
    z1, z2 = torch.randn(6, 8), torch.randn(6, 8)
    z1[2] = 0
    for fn in map(with_targets, LOSSES.values()):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        loss = fn(a, b)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_head_and_model_shapes():
    head = ProjectionHead(64, 32, 16)
    out = head(torch.randn(5, 64))
    assert out.shape == (5, 16)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    model = ContrastiveModel(build_encoder("crnn"), ProjectionHead(64, 128, 32))
    assert model.out_dim == 32 and model.embed_dim == 64
    assert model(torch.randn(3, 101, 96)).shape == (3, 32)


# ---------------------------------------------------------------- seeded reproducibility

def _train_two_steps(seed):
    model = build_model("small_cnn", head=True, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(2):
        x = torch.randn(8, 1, 48, 64, generator=g)
        loss = nt_xent(model(x + 0.1 * torch.randn(x.shape, generator=g)), model(x + 0.1 * torch.randn(x.shape, generator=g)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model.state_dict()


def test_seeded_reproducibility():
    torch.manual_seed(123)
    losses_a, state_a = _train_two_steps(0)
    torch.rand(100)  # disturb the global RNG: nothing above may depend on it
    losses_b, state_b = _train_two_steps(0)
    assert losses_a == losses_b
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    losses_c, _ = _train_two_steps(1)
    assert losses_c != losses_a


def test_seeded_build_leaves_global_rng_alone():
    for name in ENCODERS:
        torch.manual_seed(7)
        expected = torch.rand(3)
        torch.manual_seed(7)
        build_encoder(name, seed=0)
        assert torch.equal(torch.rand(3), expected), name
        a, b = build_encoder(name, seed=5), build_encoder(name, seed=5)
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())), name


# ---------------------------------------------------------------- distributed (2 gloo processes)

def _views():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(N, D, generator=g), torch.randn(N, D, generator=g)
    z2[3] = z1[3]  # a duplicated pair across the views, and a duplicate row within a view
    z1[5] = z1[1]
    return z1, z2


LOSS_CASES = {"nt_xent": dict(name="nt_xent"), "nt_xent_tau0.05": dict(name="nt_xent", tau=0.05),
              "align_uniform": dict(name="align_uniform"), "align_uniform_a1_t3": dict(name="align_uniform", alpha=1, t=3, uniform_weight=0.5)}


def _loss(case):
    kw = dict(LOSS_CASES[case])
    return get_loss(kw.pop("name"), **kw)


def _ddp_data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, 12, generator=g), torch.randn(N, 12, generator=g)


def _ddp_model():
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, D))


def _worker(rank, init_file, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        results = {"world_size": world_size()}
        n = N // WORLD
        local = slice(rank * n, (rank + 1) * n)
        z1, z2 = _views()
        for case in LOSS_CASES:
            a, b = z1[local].clone().requires_grad_(), z2[local].clone().requires_grad_()
            loss = _loss(case)(a, b)
            loss.backward()
            results[case] = (loss.detach(), a.grad, b.grad)
        # parts of align_uniform are global values too
        _, parts = align_uniform(z1[local], z2[local], parts=True)
        results["parts"] = parts
        # gather_with_grad: values in rank order; gradient = sum over ranks of each rank's gradient for the shard
        x = torch.full((2, 3), float(rank), requires_grad=True)
        gathered = gather_with_grad(x)
        (gathered * (rank + 1)).sum().backward()
        results["gather"] = (gathered.detach(), x.grad)
        # distributed=False keeps the loss local
        results["local_only"] = nt_xent(z1[local], z2[local], distributed=False)
        # DDP: backpropagating loss * world_size gives the full-batch parameter gradient
        model = nn.parallel.DistributedDataParallel(_ddp_model())
        x1, x2 = _ddp_data()
        loss = nt_xent(model(x1[local]), model(x2[local]))
        (loss * world_size()).backward()
        results["ddp"] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
        # bad input on one rank only: every rank raises (none hangs)
        errors = []
        bad = z1[local].clone()
        if rank == 1:
            bad[0, 0] = float("nan")
        for args in ((bad, z2[local]), (z1[: n + rank], z2[: n + rank]), (z1[local], z2[local][:, : D - rank])):
            try:
                nt_xent(*args)
                errors.append(None)
            except ValueError as e:
                errors.append(str(e))
        results["errors"] = errors
        # the group still works after those errors
        results["after_errors"] = nt_xent(z1[local], z2[local]).detach()
        torch.save(results, f"{out_dir}/rank{rank}.pt")
    finally:
        model = None
        gc.collect()    # DDP sits in a reference cycle: free it before the group goes, else gloo may abort at interpreter exit
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    ctx = mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + 120
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            pytest.fail("distributed workers did not finish within 120 s")
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.parametrize("case", list(LOSS_CASES))
def test_distributed_loss_matches_single_process(distributed_results, case):
    z1, z2 = _views()
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = _loss(case)(a, b)
    loss.backward()
    n = N // WORLD
    for rank, res in enumerate(distributed_results):
        assert res["world_size"] == WORLD
        value, grad_a, grad_b = res[case]
        torch.testing.assert_close(value, loss.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad_a, a.grad[rank * n:(rank + 1) * n], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(grad_b, b.grad[rank * n:(rank + 1) * n], atol=1e-5, rtol=1e-5)


def test_distributed_parts_gather_and_local(distributed_results):
    z1, z2 = _views()
    _, parts = align_uniform(z1, z2, parts=True)
    n = N // WORLD
    for rank, res in enumerate(distributed_results):
        for k in ("align", "uniform"):
            torch.testing.assert_close(res["parts"][k], parts[k], atol=1e-5, rtol=1e-5)
        gathered, grad = res["gather"]
        torch.testing.assert_close(gathered, torch.tensor([0.0] * 6 + [1.0] * 6).reshape(4, 3))
        torch.testing.assert_close(grad, torch.full((2, 3), float(sum(r + 1 for r in range(WORLD)))))
        local = slice(rank * n, (rank + 1) * n)
        torch.testing.assert_close(res["local_only"], nt_xent(z1[local], z2[local]))


def test_distributed_ddp_recipe(distributed_results):
    model = _ddp_model()
    x1, x2 = _ddp_data()
    loss = nt_xent(model(x1), model(x2))
    loss.backward()
    for res in distributed_results:
        value, grads = res["ddp"]
        torch.testing.assert_close(value, loss.detach(), atol=1e-5, rtol=1e-5)
        for got, p in zip(grads, model.parameters()):
            torch.testing.assert_close(got, p.grad, atol=1e-5, rtol=1e-5)


def test_distributed_bad_input_fails_on_every_rank(distributed_results):
    z1, z2 = _views()
    for rank, res in enumerate(distributed_results):
        nan_error, size_error, shape_error = res["errors"]
        assert nan_error is not None and "rank 1" in nan_error and "non-finite" in nan_error
        assert size_error is not None and "same number of pairs" in size_error
        assert shape_error is not None and "rank 1" in shape_error and "different shapes" in shape_error
        torch.testing.assert_close(res["after_errors"], nt_xent(z1, z2), atol=1e-5, rtol=1e-5)
