"""Writes tiny-bert/: a BertForSequenceClassification checkpoint in Hugging Face's layout, made by real PyTorch
(torch.save's zip format, pytorch_model.bin), with config.json, vocab.txt and reference logits computed here by
PyTorch for a padded batch. Re-run with Debian's python3-torch (/usr/bin/python3 make_tiny_bert.py); the tests
only read the files. Sizes match tests' MiniBert: vocab 50, hidden 16, 2 layers, 4 heads, intermediate 32,
20 positions, 2 token types, 3 labels."""
import json, math, os
import torch

torch.manual_seed(1234)
V, H, L, A, I, P, TT, C = 50, 16, 2, 4, 32, 20, 2, 3
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny-bert")
os.makedirs(out, exist_ok=True)

sd = {}
def lin(name, o, i):
    sd[name + ".weight"] = torch.randn(o, i) * 0.3
    sd[name + ".bias"] = torch.randn(o) * 0.1
def ln(name):
    sd[name + ".weight"] = 1 + torch.randn(H) * 0.1
    sd[name + ".bias"] = torch.randn(H) * 0.1

sd["bert.embeddings.word_embeddings.weight"] = torch.randn(V, H) * 0.5
sd["bert.embeddings.position_embeddings.weight"] = torch.randn(P, H) * 0.5
sd["bert.embeddings.token_type_embeddings.weight"] = torch.randn(TT, H) * 0.5
ln("bert.embeddings.LayerNorm")
for l in range(L):
    p = f"bert.encoder.layer.{l}."
    for part in ("query", "key", "value"): lin(p + "attention.self." + part, H, H)
    lin(p + "attention.output.dense", H, H); ln(p + "attention.output.LayerNorm")
    lin(p + "intermediate.dense", I, H)
    lin(p + "output.dense", H, I); ln(p + "output.LayerNorm")
lin("bert.pooler.dense", H, H)
lin("classifier", C, H)
# HF checkpoints also carry this buffer; a loader must ignore it, not fail on it.
sd["bert.embeddings.position_ids"] = torch.arange(P).unsqueeze(0)
torch.save(sd, os.path.join(out, "pytorch_model.bin"))

def forward(ids, mask):
    g = lambda n: sd[n].double()
    B, T = ids.shape
    def layer_norm(x, n): return torch.nn.functional.layer_norm(x, (H,), g(n + ".weight"), g(n + ".bias"), 1e-12)
    def linear(x, n): return x @ g(n + ".weight").T + g(n + ".bias")
    x = g("bert.embeddings.word_embeddings.weight")[ids] + g("bert.embeddings.position_embeddings.weight")[:T] + g("bert.embeddings.token_type_embeddings.weight")[0]
    x = layer_norm(x, "bert.embeddings.LayerNorm")
    ext = (1.0 - mask.double())[:, None, None, :] * torch.finfo(torch.float32).min
    D = H // A
    for l in range(L):
        p = f"bert.encoder.layer.{l}."
        heads = lambda t: t.view(B, T, A, D).transpose(1, 2)
        q, k, v = (heads(linear(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + ext, dim=-1)
        ctx = (probs @ v).transpose(1, 2).reshape(B, T, H)
        a = layer_norm(linear(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        f = linear(torch.nn.functional.gelu(linear(a, p + "intermediate.dense")), p + "output.dense")
        x = layer_norm(f + a, p + "output.LayerNorm")
    pooled = torch.tanh(linear(x[:, 0], "bert.pooler.dense"))
    return linear(pooled, "classifier")

ids = torch.tensor([[2, 11, 17, 5, 33, 48, 3], [2, 40, 9, 3, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0]])
mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]])
logits = forward(ids, mask)
json.dump({"ids": ids.flatten().tolist(), "mask": mask.flatten().tolist(), "batch": 3, "sequence": 7,
           "logits": logits.flatten().tolist(), "torch": torch.__version__}, open(os.path.join(out, "reference.json"), "w"), indent=1)
json.dump({"architectures": ["BertForSequenceClassification"], "model_type": "bert", "vocab_size": V, "hidden_size": H,
           "num_hidden_layers": L, "num_attention_heads": A, "intermediate_size": I, "hidden_act": "gelu",
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": P,
           "type_vocab_size": TT, "layer_norm_eps": 1e-12, "id2label": {"0": "a", "1": "b", "2": "c"},
           "label2id": {"a": 0, "b": 1, "c": 2}}, open(os.path.join(out, "config.json"), "w"), indent=1)
open(os.path.join(out, "vocab.txt"), "w").write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(5, V)]) + "\n")
print("wrote", out, logits.tolist())
