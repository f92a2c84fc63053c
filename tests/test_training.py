import pytest
import torch

from afm.core.errors import AFMError
from afm.explain.parts import explain_split
from afm.explain.statistics import pair_statistics
from afm.models.inference import evaluate
from afm.training.loop import TrainConfig, resolve_device, train
from afm.training.workflows import fit, make_model


def test_training_lowers_validation_rmse(trained_pair):
    for kind in ("fm", "afm"):
        history = trained_pair[f"{kind}_result"].history
        best = trained_pair[f"{kind}_result"].best_epoch
        assert best > 0
        assert history[best]["validation_rmse"] < history[0]["validation_rmse"] - 0.1


def test_best_epoch_is_restored(trained_pair, synthetic):
    result = trained_pair["afm_result"]
    restored = evaluate(trained_pair["afm"], synthetic, "validation")["rmse"]
    assert restored == pytest.approx(result.best_validation, abs=1e-6)
    assert result.best_validation == min(row["validation_rmse"] for row in result.history)


def test_afm_beats_fm_and_attends_to_the_planted_pairs(trained_pair, synthetic):
    fm_rmse = evaluate(trained_pair["fm"], synthetic, "test")["rmse"]
    afm_rmse = evaluate(trained_pair["afm"], synthetic, "test")["rmse"]
    assert afm_rmse < fm_rmse - 0.02, (afm_rmse, fm_rmse)
    top = pair_statistics(explain_split(trained_pair["afm"], synthetic, "test")).head(2)
    assert {tuple(sorted(p)) for p in zip(top.field_a, top.field_b)} == {tuple(sorted(p)) for p in synthetic.planted_pairs}


def test_attention_is_not_uniform_after_training(trained_pair, synthetic):
    summary = pair_statistics(explain_split(trained_pair["afm"], synthetic, "test"))
    assert summary.mean_attention.sum() == pytest.approx(1.0, abs=1e-5)
    assert summary.mean_attention.max() > 3 / synthetic.num_pairs


@pytest.mark.parametrize("k,t", [(8, 4), (64, 72)])  # at 64 and 72 the attention network's matmuls are oneDNN's
def test_same_seed_same_model_bit_for_bit(synthetic, k, t):
    small = {"epochs": 2, "embed_dim": k, "attention_factor": t, "dropout": 0.3, "attention_dropout": 0.2}
    a, b = fit(synthetic, "afm", small).model, fit(synthetic, "afm", small).model
    c = fit(synthetic, "afm", dict(small, seed=1)).model
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.embedding.weight, c.embedding.weight)


def test_nan_loss_stops_with_a_message_and_keeps_the_best_epoch(synthetic):
    model = make_model(synthetic, "afm", {"embed_dim": 8, "attention_factor": 4})
    result = train(model, synthetic, TrainConfig(epochs=5, lr=1e9, optimizer="adagrad", batch_size=512))
    assert result.diverged and result.stop_reason == "diverged" and result.best_epoch == 0
    assert "epoch 1" in result.message and "lower learning rate" in result.message
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the best (initial) state is back


def test_stop_request_keeps_the_best_epoch_and_progress_is_reported(synthetic):
    model = make_model(synthetic, "fm", {"embed_dim": 8})
    events = []
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 80  # stop in the middle of epoch 2 (55 batches an epoch)

    result = train(model, synthetic, TrainConfig(epochs=10, batch_size=256, optimizer="adam"),
                   on_progress=lambda *e: events.append(e), should_stop=should_stop)
    assert result.stop_reason == "stopped" and result.best_epoch == 1 and len(result.history) == 2
    assert events[-1][0] == 2  # epoch 2 was reporting batches when the stop came
    assert any(e[1] == e[2] and e[0] == 1 for e in events)  # end of epoch 1 reported


def test_early_stopping(synthetic):
    model = make_model(synthetic, "fm", {"embed_dim": 8})
    # With patience 2, training ends exactly two epochs after the best one.
    result = train(model, synthetic, TrainConfig(epochs=50, lr=0.2, optimizer="adagrad", batch_size=64, patience=2))
    assert result.stop_reason == "early stopping"
    assert len(result.history) - 1 == result.best_epoch + 2


def test_l2_penalty_shrinks_attention_weights(synthetic):
    norms = []
    for lam in (0.0, 1000.0):
        model = fit(synthetic, "afm", {"epochs": 2, "l2_attention": lam, "embed_dim": 8, "attention_factor": 8}).model
        norms.append(model.attention_W.square().sum().item())
    assert norms[1] < 0.5 * norms[0]


def test_bad_settings_are_refused(synthetic):
    model = make_model(synthetic, "fm", {})
    with pytest.raises(AFMError, match="must be one of adagrad, adam"):
        train(model, synthetic, TrainConfig(optimizer="sgd"))
    if not torch.cuda.is_available():
        with pytest.raises(AFMError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(AFMError, match="unknown device"):
        resolve_device("tpu9")
    assert resolve_device("cpu").type == "cpu"



def test_row_adagrad_on_sparse_gradients_matches_dense_adagrad_where_a_batch_touches_few_rows():
    # MovieLens-like: a batch of 64 rows x 3 fields touches far fewer than the 3000 rows of the tables.
    from afm.models import AFM, ModelConfig
    from afm.training.loop import build_optimizer

    torch.manual_seed(0)
    config = ModelConfig("afm", num_features=3000, num_fields=3, embed_dim=8, attention_factor=4)
    sparse_model, dense_model = AFM(config), AFM(config)
    dense_model.load_state_dict(sparse_model.state_dict())
    start = dense_model.embedding.weight.detach().clone()
    sparse_opt = build_optimizer(sparse_model, TrainConfig(batch_size=64, lr=0.05), 3, 3000)
    dense_opt = torch.optim.Adagrad(dense_model.parameters(), lr=0.05)
    assert sparse_model.embedding.sparse and not dense_model.embedding.sparse
    for step in range(20):
        x = torch.randint(0, 1000, (64, 3)) + torch.tensor([0, 1000, 2000])
        y = torch.randn(64)
        for model, optimizer in ((sparse_model, sparse_opt), (dense_model, dense_opt)):
            optimizer.zero_grad()
            (model(x) - y).square().mean().backward()
            optimizer.step()
    assert sparse_model.embedding.weight.grad.is_sparse
    assert not torch.allclose(dense_model.embedding.weight, start)  # they trained
    # The tables, the only parameters whose gradients change form, agree up to float rounding. (Not the
    # attention bias b: softmax ignores a shift common to all pairs, so b's true gradient is ~0 and Adagrad
    # turns rounding noise there into lr-sized steps in either model.)
    for name in ("embedding", "linear"):
        torch.testing.assert_close(getattr(sparse_model, name).weight, getattr(dense_model, name).weight,
                                   atol=1e-5, rtol=1e-4)
    assert (dense_model.embedding.weight - start).abs().max() > 0.05  # far larger moves than that tolerance


def test_adagrad_is_dense_where_a_batch_touches_most_rows_and_updates_rows_where_it_touches_few():
    from afm.models import FM, ModelConfig
    from afm.training.loop import build_optimizer

    frappe = FM(ModelConfig("fm", num_features=5382, num_fields=10, embed_dim=4))
    build_optimizer(frappe, TrainConfig(batch_size=1024), 10, 5382)
    assert not frappe.embedding.sparse
    build_optimizer(frappe, TrainConfig(batch_size=128), 10, 5382)
    assert frappe.embedding.sparse
    movielens = FM(ModelConfig("fm", num_features=90445, num_fields=3, embed_dim=4))
    optimizer = build_optimizer(movielens, TrainConfig(batch_size=1024), 3, 90445)
    assert movielens.embedding.sparse and optimizer.defaults["fused"]  # the dense rest stays fused
    x = torch.randint(0, 90445, (1024, 3))
    movielens(x).sum().backward()
    before = movielens.embedding.weight.detach().clone()
    optimizer.step()  # PyTorch's fused kernel would refuse a sparse gradient; RowAdagrad takes it
    assert movielens.embedding.weight.grad.is_sparse
    moved = (movielens.embedding.weight != before).any(1)
    touched = torch.zeros(90445, dtype=torch.bool)
    touched[x.flatten()] = True
    assert torch.equal(moved, touched)  # exactly the batch's rows changed
