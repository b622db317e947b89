"""Inference kernels and model loading on a tiny random model (no Ray): shared-prefix and
padded scoring against an unpadded one-sequence-at-a-time reference, batched generation
against a hand-written greedy loop, out-of-memory halving, model resolution errors."""

from __future__ import annotations

import random

import pytest
import torch

from pipelines.errors import ModelNotFoundError
from pipelines.llm.infer import adaptive_map, generate, score_padded, score_shared_prefix
from pipelines.llm.model import ModelSpec, load_model, model_spec, pick_device_dtype
from tests.llm_fixtures import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
    model, tok = load_model(ModelSpec(str(path), "tiny", "cpu", "float32"))
    return path, model, tok


def _reference_scores(model, prefix, suffixes, scorer, yes_no):
    """One unpadded forward per full sequence, no cache, no masks."""
    out = []
    for s in suffixes:
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([list(prefix) + list(s)])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)
        if scorer == "yes_no":
            out.append(float(logits[-1, yes_no[0]] - logits[-1, yes_no[1]]))
        else:
            p = len(prefix)
            out.append(sum(float(logp[p + j - 1, t]) for j, t in enumerate(s)) / len(s))
    return out


@pytest.mark.parametrize("scorer", ["yes_no", "title_loglik"])
@pytest.mark.parametrize("batch", [1, 3, 16])
def test_shared_prefix_and_padded_match_reference(tiny, scorer, batch):
    _, model, _ = tiny
    rng = random.Random(batch)
    vocab = model.config.vocab_size
    prefix = [rng.randrange(3, vocab) for _ in range(23)]
    suffixes = [[rng.randrange(3, vocab) for _ in range(rng.randint(1, 9))] for _ in range(7)]
    kw = {"scorer": scorer, "yes_no": (5, 9), "pad_id": 2, "batch": batch}
    ref = _reference_scores(model, prefix, suffixes, scorer, (5, 9))
    with torch.inference_mode():
        shared = score_shared_prefix(model, prefix, suffixes, **kw)
        padded = score_padded(model, prefix, suffixes, **kw)
    assert shared == pytest.approx(ref, abs=1e-4)
    assert padded == pytest.approx(ref, abs=1e-4)


def test_batched_generation_matches_greedy_loop(tiny):
    _, model, tok = tiny
    prompts = [
        tok.apply_chat_template(
            [{"role": "user", "content": c}], add_generation_prompt=True, tokenize=False
        )
        for c in ("yes", "the movie title likes comedy drama action", "no no")
    ]
    ids = [tok.encode(p, add_special_tokens=False) for p in prompts]
    got = generate(model, ids, pad_id=tok.pad_token_id, max_new_tokens=6, batch=3)
    eos = tok.eos_token_id
    for seq, new in zip(ids, got, strict=True):
        cur, expected = list(seq), []
        with torch.inference_mode():
            for _ in range(6):
                nxt = int(model(input_ids=torch.tensor([cur])).logits[0, -1].argmax())
                if nxt == eos:
                    break
                expected.append(nxt)
                cur.append(nxt)
        assert new == expected


def test_adaptive_map_halves_on_out_of_memory():
    calls = []

    def fn(chunk):
        calls.append(len(chunk))
        if len(chunk) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in chunk]

    state: dict = {}
    assert adaptive_map(fn, list(range(7)), 8, state) == [x * 10 for x in range(7)]
    assert calls[:3] == [7, 4, 2] and state == {"batch": 2, "halvings": 2}
    # the next call starts at the reduced size
    calls.clear()
    adaptive_map(fn, [1, 2, 3], 8, state)
    assert calls == [2, 1]

    def broken(chunk):
        raise ValueError("not memory")

    with pytest.raises(ValueError):
        adaptive_map(broken, [1], 4, {})


def test_model_resolution_errors_name_the_path_and_the_fix(tmp_path, tiny):
    path, _, _ = tiny
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "nope")) as e:
        model_spec(str(tmp_path / "nope"))
    assert "save_pretrained" in str(e.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="config.json"):
        model_spec(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="not in the local Hugging Face cache") as e:
        model_spec("no-such-org/no-such-model-walkrank")
    assert "huggingface-cli download no-such-org/no-such-model-walkrank" in str(e.value)
    spec = model_spec(str(path), device="cpu")
    assert (spec.device, spec.dtype) == ("cpu", "auto")  # resolved where the model loads
    assert load_model(spec)[0].dtype == torch.float32
    dev, dtype, _ = pick_device_dtype("auto", "auto")
    assert (dev, dtype) == (
        ("cuda", "bfloat16") if torch.cuda.is_available() else ("cpu", "float32")
    )
    assert pick_device_dtype("cpu", "bfloat16")[:2] == ("cpu", "bfloat16")
