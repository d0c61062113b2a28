"""Writes the small torch.save files the pytorch_model.bin reader is tested with.

Run with Debian's interpreter (it has python3-torch): /usr/bin/python3 tests/model/io-fixtures/make_torch_checkpoints.py
Outputs, next to this script (committed, so tests never need torch):
  tiny-bert-bin/      a complete BERT folder whose weights are only a zip-format pytorch_model.bin
                      (bert.-prefixed names, pooler + MLM head with a tied decoder, position_ids buffer)
  dtypes.bin          zip format: f16/bf16/f64/int64/bool tensors, a transposed view, a slice at an offset, a tied pair
  dtypes-legacy.bin   the same state dict in the pre-1.6 legacy (non-zip) format
  dtypes.json         expected shapes and values for both
  malicious.bin       a torch.save whose pickle calls os.system (must be refused, never run)
"""
import collections
import json
import os
import pathlib

import torch

HERE = pathlib.Path(__file__).resolve().parent
torch.manual_seed(1234)


def tiny_bert():
    cfg = dict(vocab_size=24, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=12,
               max_position_embeddings=16, type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, hidden_act="gelu",
               model_type="bert", architectures=["BertForPreTraining"], hidden_dropout_prob=0.1,
               attention_probs_dropout_prob=0.1, initializer_range=0.02, position_embedding_type="absolute")
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    sd = collections.OrderedDict()
    word = torch.randn(cfg["vocab_size"], h)
    sd["bert.embeddings.word_embeddings.weight"] = word
    sd["bert.embeddings.position_embeddings.weight"] = torch.randn(cfg["max_position_embeddings"], h)
    sd["bert.embeddings.token_type_embeddings.weight"] = torch.randn(2, h)
    sd["bert.embeddings.LayerNorm.weight"] = torch.randn(h)
    sd["bert.embeddings.LayerNorm.bias"] = torch.randn(h)
    sd["bert.embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).unsqueeze(0)
    p = "bert.encoder.layer.0."
    for proj in ("query", "key", "value"):
        sd[p + f"attention.self.{proj}.weight"] = torch.randn(h, h)
        sd[p + f"attention.self.{proj}.bias"] = torch.randn(h)
    sd[p + "attention.output.dense.weight"] = torch.randn(h, h)
    sd[p + "attention.output.dense.bias"] = torch.randn(h)
    sd[p + "attention.output.LayerNorm.weight"] = torch.randn(h)
    sd[p + "attention.output.LayerNorm.bias"] = torch.randn(h)
    sd[p + "intermediate.dense.weight"] = torch.randn(i, h)
    sd[p + "intermediate.dense.bias"] = torch.randn(i)
    sd[p + "output.dense.weight"] = torch.randn(h, i)
    sd[p + "output.dense.bias"] = torch.randn(h)
    sd[p + "output.LayerNorm.weight"] = torch.randn(h)
    sd[p + "output.LayerNorm.bias"] = torch.randn(h)
    sd["bert.pooler.dense.weight"] = torch.randn(h, h)
    sd["bert.pooler.dense.bias"] = torch.randn(h)
    sd["cls.predictions.bias"] = torch.randn(cfg["vocab_size"])
    sd["cls.predictions.decoder.weight"] = word  # tied, as in BertForPreTraining
    out = HERE / "tiny-bert-bin"
    out.mkdir(exist_ok=True)
    torch.save(sd, out / "pytorch_model.bin")
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cell", "gene", "protein", "##s", "##ing",
             "bind", "tumor", "a", "of", "in", ".", ",", "p", "##53", "express", "##ion", "is", "and"]
    assert len(vocab) == cfg["vocab_size"]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}) + "\n")
    expected = {name: {"shape": list(t.shape), "values": t.double().flatten().tolist()} for name, t in sd.items()}
    (out / "expected.json").write_text(json.dumps(expected) + "\n")


def dtypes():
    base = torch.randn(5, 7)
    sd = collections.OrderedDict()
    sd["f32"] = base
    sd["f16"] = torch.randn(3, 4).half()
    sd["bf16"] = torch.randn(6).bfloat16()
    sd["f64"] = torch.randn(2, 3).double()
    sd["i64"] = torch.arange(-3, 9).reshape(3, 4)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = base.t()  # strides (1, 7) into the same storage as f32
    sd["slice"] = base[2:4, 1:6]  # offset 15, strides (7, 1)
    sd["tied"] = base
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    torch.save(sd, HERE / "dtypes.bin")
    torch.save(sd, HERE / "dtypes-legacy.bin", _use_new_zipfile_serialization=False)
    expected = {name: {"shape": list(t.shape), "values": t.double().flatten().tolist()} for name, t in sd.items()}
    (HERE / "dtypes.json").write_text(json.dumps(expected) + "\n")


class RunsAShellCommand:
    def __reduce__(self):
        return (os.system, ("echo pickle code ran > /tmp/qlora-lab-pwned",))


def malicious():
    torch.save({"embeddings.word_embeddings.weight": RunsAShellCommand()}, HERE / "malicious.bin")


tiny_bert()
dtypes()
malicious()
