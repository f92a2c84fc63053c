import pytest
import torch

from afm.models import AFM, FM, ModelConfig, build_model


def make(kind="afm", m=6, n=40, k=8, t=5, **kw):
    torch.manual_seed(1)
    return build_model(ModelConfig(kind, num_features=n, num_fields=m, embed_dim=k, attention_factor=t, **kw)).eval()


def batch(m=6, n=40, b=32, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (b, m), generator=g)


def randomize(model):
    """Initial embeddings are tiny (std 0.01); spread them so attention has something to tell apart."""
    with torch.no_grad():
        model.embedding.weight.normal_(0, 1.0)
        model.linear.weight.normal_(0, 0.3)
        model.bias.fill_(0.1)
    return model


def test_attention_is_normalised_over_pairs_not_a_size_one_axis():
    model = randomize(make())
    parts = model.parts(batch())
    assert parts.attention.shape == (32, 15)
    torch.testing.assert_close(parts.attention.sum(1), torch.ones(32))
    assert (parts.attention > 0).all() and (parts.attention < 1).all()
    # The authors' released code normalises over an axis of size 1, giving all ones; ours varies per pair.
    assert parts.attention.std(1).min() > 1e-4


def test_a_pairs_attention_depends_on_the_other_pairs():
    """Softmax over pairs couples them: changing only field 5's feature moves pair (0, 1)'s weight."""
    model = randomize(make())
    x = batch(b=1)
    other = x.clone()
    other[0, 5] = (x[0, 5] + 1) % 40
    a, b = model.parts(x).attention[0], model.parts(other).attention[0]
    assert abs(a[0] - b[0]) > 1e-6  # pair (0, 1) involves neither feature that changed
    torch.testing.assert_close(b.sum(), torch.tensor(1.0))


@pytest.mark.parametrize("kind, options", [("fm", {}), ("afm", {}), ("afm", {"attention": False}),
                                           ("afm", {"learn_p": False})])
def test_parts_sum_to_the_prediction_and_match_forward(kind, options):
    model = randomize(make(kind, **options))
    x = batch()
    parts = model.parts(x)
    total = parts.bias + parts.first_order.sum(1) + parts.contribution.sum(1)
    torch.testing.assert_close(total, parts.prediction, atol=1e-5, rtol=0)
    torch.testing.assert_close(parts.contribution, parts.attention * parts.interaction)
    with torch.no_grad():
        torch.testing.assert_close(model(x), parts.prediction, atol=1e-5, rtol=1e-5)


def test_fm_pairs_have_weight_one_and_the_fast_forward_equals_the_pair_sum():
    fm = randomize(make("fm"))
    x = batch()
    parts = fm.parts(x)
    assert torch.equal(parts.attention, torch.ones_like(parts.attention))
    v = fm.embedding(x)
    explicit = sum((v[:, i] * v[:, j]).sum(1) for i in range(6) for j in range(i + 1, 6))
    torch.testing.assert_close(parts.contribution.sum(1), explicit.detach(), atol=1e-4, rtol=1e-5)


def test_afm_with_equal_attention_is_fm_scaled_by_one_over_pairs():
    fm = randomize(make("fm"))
    for options in ({"attention": False, "learn_p": False}, {"learn_p": False}):
        afm = make("afm", **options)
        afm.load_fm_embeddings(fm)
        if options.get("attention", True):
            with torch.no_grad():
                afm.attention_h.zero_()  # equal scores -> softmax gives exactly 1/P
        x = batch()
        fm_parts, afm_parts = fm.parts(x), afm.parts(x)
        torch.testing.assert_close(afm_parts.attention, torch.full_like(afm_parts.attention, 1 / 15))
        torch.testing.assert_close(afm_parts.contribution.sum(1), fm_parts.contribution.sum(1) / 15, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(afm_parts.first_order, fm_parts.first_order)


def test_switches_change_parameters():
    assert isinstance(make("afm"), AFM) and isinstance(make("fm"), FM)
    uniform = make("afm", attention=False)
    assert not hasattr(uniform, "attention_W")
    assert uniform.attention_penalty().item() == 0
    fixed_p = make("afm", learn_p=False)
    assert not fixed_p.p.requires_grad and torch.equal(fixed_p.p, torch.ones(8))
    assert make("afm").p.requires_grad
    full = make("afm")
    torch.testing.assert_close(full.attention_penalty(), full.attention_W.square().sum())
    assert full.attention_W.shape == (5, 8)  # W: t x k


def test_dropout_only_in_training_mode():
    model = randomize(make("afm", dropout=0.5, attention_dropout=0.5))
    x = batch()
    with torch.no_grad():
        model.train()
        a, b = model(x), model(x)
        model.eval()
        c, d = model(x), model(x)
    assert not torch.allclose(a, b)
    assert torch.equal(c, d)


def test_load_fm_embeddings_rejects_other_sizes():
    from afm.core.errors import AFMError

    with pytest.raises(AFMError, match="8 dims"):
        make("afm", k=4).load_fm_embeddings(make("fm", k=8))


def test_afm_from_fm_with_p_at_pairs_starts_as_exactly_that_fm():
    fm = randomize(make("fm"))
    afm = make("afm")
    afm.load_fm_embeddings(fm, p_start="pairs")
    with torch.no_grad():
        afm.attention_h.zero_()  # uniform attention
    x = batch()
    torch.testing.assert_close(afm.parts(x).prediction, fm.parts(x).prediction, atol=1e-5, rtol=1e-5)
    assert torch.equal(afm.p, torch.full((8,), 15.0))
    authors = make("afm")
    authors.load_fm_embeddings(fm)
    assert torch.equal(authors.p, torch.ones(8))


def values_and_gradients(model, x):
    model.zero_grad()
    out = model(x)
    out.square().sum().backward()
    return [out.detach()] + [p.grad.clone() for p in model.parameters() if p.grad is not None]


def assert_all_close(ours, plain):
    # float32 sums in another order: errors relative to each tensor's scale, not to a (cancelled) entry
    for a, b in zip(ours, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(1.0, b.abs().max().item()))


@pytest.mark.parametrize("attention", [True, False])
def test_sharing_distinct_pairs_or_not_gives_the_same_values_and_gradients(attention):
    torch.manual_seed(0)
    model = AFM(ModelConfig("afm", 40, 6, embed_dim=8, attention_factor=4, attention=attention))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.5)
    rows = torch.randint(0, 4, (64, 6)) + torch.arange(6) * 6  # few values per field: pairs repeat
    results = {}
    for share in (True, False):
        model.share_pairs = share
        results[share] = values_and_gradients(model, rows)
    assert_all_close(results[True], results[False])


@pytest.mark.parametrize("share", [False, True])  # every cell; each distinct pair once
@pytest.mark.parametrize("attention,k,t", [(True, 16, 8), (True, 16, 80), (True, 64, 80), (False, 16, 8)])
def test_an_afm_gives_the_same_values_and_gradients_with_and_without_the_kernels(attention, k, t, share):
    torch.manual_seed(0)  # t = 80: the matmuls in afm.fast.matmul (at k = 64 all three in oneDNN)
    model = AFM(ModelConfig("afm", 300, 12, embed_dim=k, attention_factor=t, attention=attention))
    with torch.no_grad():
        model.embedding.weight.normal_(0, 0.5)
        model.linear.weight.normal_(0, 0.1)
    x = torch.randint(0, 25, (96, 12)) + torch.arange(12) * 25
    model.share_pairs = share
    assert model.fused_cells(x)
    results = {}
    for fused in (True, False):
        model.fused_kernels = fused
        results[fused] = values_and_gradients(model, x)
    assert_all_close(results[True], results[False])


def test_pair_sharing_is_chosen_from_the_work_it_saves():
    config = ModelConfig("afm", 4000, 6, embed_dim=64, attention_factor=64)
    model = AFM(config)
    repeated = torch.zeros(512, 6, dtype=torch.long) + torch.arange(6) * 10  # one pair per column
    assert model.choose_pair_sharing(repeated) and model.share_pairs
    distinct = torch.arange(512 * 6).reshape(512, 6)  # every cell its own pair
    assert not model.choose_pair_sharing(distinct) and not model.share_pairs
