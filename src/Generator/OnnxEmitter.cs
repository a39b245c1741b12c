using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Emits <c>ExportOnnx(path)</c>: the network's op list, in evaluation mode, as ONNX nodes (opset 17) with the
    /// parameters as initializers under their state-dict names: token ids and the attention mask are int64 inputs,
    /// the batch and the sequence length symbolic dimensions.
    /// </summary>
    internal static class OnnxEmitter
    {
        private const string G = "global::Compiled.Nets.Serialization.OnnxGraph";

        public static void Emit(SourceWriter w, NetworkSpec s)
        {
            w.Line("/// <summary>Writes the inference graph (evaluation mode) and the weights as an ONNX model, opset 17: input \"input\" [batch, ..InputShape] (int64 token ids for a token network), \"attention_mask\" [batch, sequence] (int64, where the network reads it), output \"output\" [batch, ..OutputShape].</summary>");
            w.Open("public void ExportOnnx(string path)");
            bool sequence = s.MaxSequence > 0;
            bool masked = sequence && s.Ops.Any(o => o.Kind is OpKind.SelfAttention or OpKind.MeanOverSequence);
            w.Line($"var g = new {G}(\"{s.TypeName}\");");
            w.Line($"g.Input(\"input\", global::Compiled.Nets.Serialization.OnnxElement.{(s.TokenInput ? "Int64" : "Float")}, new int[] {{ {string.Join(", ", s.InputShape)} }});");
            if (masked)
            {
                // HF's mask [batch, sequence] of 1/0: as floats, as the additive attention mask (0 or float.MinValue, as
                // the kernels and HF's BERT add it) and as a column for masked means.
                w.Line("g.Input(\"attention_mask\", global::Compiled.Nets.Serialization.OnnxElement.Int64, new int[] { -1 });");
                w.Line("g.Node(\"Cast\", new[] { \"attention_mask\" }, \"mask_f\", (\"to\", 1));");
                w.Line("g.Node(\"Sub\", new[] { g.Scalar(1f), \"mask_f\" }, \"mask_inverse\");");
                w.Line("g.Node(\"Mul\", new[] { \"mask_inverse\", g.Scalar(float.MinValue) }, \"mask_bias\");");
                w.Line("g.Node(\"Unsqueeze\", new[] { \"mask_bias\", g.Int64(true, 1, 2) }, \"mask_add\");");
                w.Line("g.Node(\"Unsqueeze\", new[] { \"mask_f\", g.Int64(true, 2) }, \"mask_column\");");
                w.Line("g.Node(\"ReduceSum\", new[] { \"mask_f\", g.Int64(true, 1) }, \"mask_count\", (\"keepdims\", 1));");
            }
            if (s.Ops.Any(o => o.Kind == OpKind.AddPositions) && sequence)
            {
                w.Line("g.Node(\"Shape\", new[] { \"input\" }, \"input_shape\");");
                w.Line("g.Node(\"Slice\", new[] { \"input_shape\", g.Int64(true, 1), g.Int64(true, 2) }, \"sequence_length\");");
            }
            string Value(int id) => s.Ops[id].Kind == OpKind.Input ? "\"input\"" : $"\"v{id}\"";
            string Param(OpSpec op, string suffix)
            {
                var l = s.Layers[op.Layer];
                var p = s.Parameters.First(q => q.Name == l.StateName + "." + suffix);
                string read = p.IsBuffer ? $"_store.Value({p.Field})" : $"_store.ReadValue({p.Field})";
                return $"g.Initializer(\"{p.Name}\", {read}{string.Concat(p.Shape.Select(d => ", " + I(d)))})";
            }
            string Ints(params int[] v) => $"new int[] {{ {string.Join(", ", v.Select(x => I(x)))} }}";
            foreach (var op in s.Ops)
            {
                if (op.Kind == OpKind.Input) continue;
                string x = Value(op.Input), y = $"\"v{op.Id}\"";
                switch (op.Kind)
                {
                    case OpKind.Conv2d:
                    {
                        var i = s.Layers[op.Layer].Ints; // in, out, kernel, stride, padding, dilation
                        string b = s.Layers[op.Layer].Bias ? ", " + Param(op, "bias") : "";
                        w.Line($"g.Node(\"Conv\", new[] {{ {x}, {Param(op, "weight")}{b} }}, {y}, (\"kernel_shape\", {Ints(i[2], i[2])}), (\"strides\", {Ints(i[3], i[3])}), (\"pads\", {Ints(i[4], i[4], i[4], i[4])}), (\"dilations\", {Ints(i[5], i[5])}));");
                        break;
                    }
                    case OpKind.Linear when op.InShape.Count == 1:
                    {
                        string b = s.Layers[op.Layer].Bias ? ", " + Param(op, "bias") : "";
                        w.Line($"g.Node(\"Gemm\", new[] {{ {x}, {Param(op, "weight")}{b} }}, {y}, (\"transB\", 1));");
                        break;
                    }
                    case OpKind.Linear:
                    {
                        // Over the last dimension of a larger tensor: MatMul by Wᵀ, then the bias.
                        var i = s.Layers[op.Layer].Ints;
                        var wp = s.Parameters.First(q => q.Name == s.Layers[op.Layer].StateName + ".weight");
                        string wt = $"g.TransposedInitializer(\"{wp.Name}.T\", _store.ReadValue({wp.Field}), {I(i[1])}, {I(i[0])})";
                        if (s.Layers[op.Layer].Bias)
                        {
                            w.Line($"g.Node(\"MatMul\", new[] {{ {x}, {wt} }}, \"v{op.Id}_matmul\");");
                            w.Line($"g.Node(\"Add\", new[] {{ \"v{op.Id}_matmul\", {Param(op, "bias")} }}, {y});");
                        }
                        else w.Line($"g.Node(\"MatMul\", new[] {{ {x}, {wt} }}, {y});");
                        break;
                    }
                    case OpKind.MaxPool2d:
                    case OpKind.AvgPool2d:
                    {
                        int k = op.Ints[0], st = op.Ints[1], p = op.Ints[2];
                        string extra = op.Kind == OpKind.AvgPool2d ? ", (\"count_include_pad\", 1)" : "";
                        w.Line($"g.Node(\"{(op.Kind == OpKind.MaxPool2d ? "MaxPool" : "AveragePool")}\", new[] {{ {x} }}, {y}, (\"kernel_shape\", {Ints(k, k)}), (\"strides\", {Ints(st, st)}), (\"pads\", {Ints(p, p, p, p)}){extra});");
                        break;
                    }
                    case OpKind.BatchNorm2d:
                        w.Line($"g.Node(\"BatchNormalization\", new[] {{ {x}, {Param(op, "weight")}, {Param(op, "bias")}, {Param(op, "running_mean")}, {Param(op, "running_var")} }}, {y}, (\"epsilon\", {F(s.Layers[op.Layer].Real)}));");
                        break;
                    case OpKind.LayerNorm:
                        w.Line($"g.Node(\"LayerNormalization\", new[] {{ {x}, {Param(op, "weight")}, {Param(op, "bias")} }}, {y}, (\"axis\", -1), (\"epsilon\", {F(s.Layers[op.Layer].Real)}));");
                        break;
                    case OpKind.Gelu:
                        // GELU with erf, as the kernels compute it: x · ½ · (1 + erf(x / √2)).
                        w.Line($"g.Node(\"Div\", new[] {{ {x}, g.Scalar(1.4142135f) }}, \"v{op.Id}_scaled\");");
                        w.Line($"g.Node(\"Erf\", new[] {{ \"v{op.Id}_scaled\" }}, \"v{op.Id}_erf\");");
                        w.Line($"g.Node(\"Add\", new[] {{ \"v{op.Id}_erf\", g.Scalar(1f) }}, \"v{op.Id}_one\");");
                        w.Line($"g.Node(\"Mul\", new[] {{ {x}, \"v{op.Id}_one\" }}, \"v{op.Id}_prod\");");
                        w.Line($"g.Node(\"Mul\", new[] {{ \"v{op.Id}_prod\", g.Scalar(0.5f) }}, {y});");
                        break;
                    case OpKind.Flatten:
                        w.Line($"g.Node(\"Flatten\", new[] {{ {x} }}, {y}, (\"axis\", 1));");
                        break;
                    case OpKind.Add:
                        w.Line($"g.Node(\"Add\", new[] {{ {x}, {Value(op.Input2)} }}, {y});");
                        break;
                    case OpKind.Softmax:
                        w.Line($"g.Node(\"Softmax\", new[] {{ {x} }}, {y}, (\"axis\", -1));");
                        break;
                    case OpKind.Dropout:
                        w.Line($"g.Node(\"Identity\", new[] {{ {x} }}, {y}); // dropout is off in evaluation");
                        break;
                    case OpKind.Embedding:
                        w.Line($"g.Node(\"Gather\", new[] {{ {Param(op, "weight")}, {x} }}, {y});");
                        break;
                    case OpKind.AddPositions:
                    {
                        string end = op.InShape[0] < 0 ? "\"sequence_length\"" : $"g.Int64(true, {I(op.InShape[0])})";
                        w.Line($"g.Node(\"Slice\", new[] {{ {Param(op, "weight")}, g.Int64(true, 0), {end}, g.Int64(true, 0) }}, \"v{op.Id}_positions\");");
                        w.Line($"g.Node(\"Add\", new[] {{ {x}, \"v{op.Id}_positions\" }}, {y});");
                        break;
                    }
                    case OpKind.AddTokenType:
                        w.Line($"g.Node(\"Gather\", new[] {{ {Param(op, "weight")}, g.Int64(false, 0) }}, \"v{op.Id}_type0\"); // token type 0 everywhere");
                        w.Line($"g.Node(\"Add\", new[] {{ {x}, \"v{op.Id}_type0\" }}, {y});");
                        break;
                    case OpKind.SelectToken:
                        w.Line($"g.Node(\"Gather\", new[] {{ {x}, g.Int64(false, {I(op.Ints[0])}) }}, {y}, (\"axis\", 1));");
                        break;
                    case OpKind.MeanOverSequence:
                        w.Line($"g.Node(\"Mul\", new[] {{ {x}, \"mask_column\" }}, \"v{op.Id}_masked\");");
                        w.Line($"g.Node(\"ReduceSum\", new[] {{ \"v{op.Id}_masked\", g.Int64(true, 1) }}, \"v{op.Id}_sum\", (\"keepdims\", 0));");
                        w.Line($"g.Node(\"Div\", new[] {{ \"v{op.Id}_sum\", \"mask_count\" }}, {y});");
                        break;
                    case OpKind.SelfAttention:
                    {
                        var l = s.Layers[op.Layer];
                        int e = l.Ints[0], heads = l.Ints[1], d = e / heads;
                        string v = $"v{op.Id}";
                        foreach (var part in new[] { "query", "key", "value" })
                        {
                            var wp = s.Parameters.First(q => q.Name == l.StateName + "." + part + ".weight");
                            w.Line($"g.Node(\"MatMul\", new[] {{ {x}, g.TransposedInitializer(\"{wp.Name}.T\", _store.ReadValue({wp.Field}), {I(e)}, {I(e)}) }}, \"{v}_{part}_raw\");");
                            w.Line($"g.Node(\"Add\", new[] {{ \"{v}_{part}_raw\", {Param(op, part + ".bias")} }}, \"{v}_{part}\");");
                            w.Line($"g.Node(\"Reshape\", new[] {{ \"{v}_{part}\", g.Int64(true, 0, 0, {I(heads)}, {I(d)}) }}, \"{v}_{part}_heads\");");
                            string perm = part == "key" ? "0, 2, 3, 1" : "0, 2, 1, 3";
                            w.Line($"g.Node(\"Transpose\", new[] {{ \"{v}_{part}_heads\" }}, \"{v}_{part}_t\", (\"perm\", new int[] {{ {perm} }}));");
                        }
                        w.Line($"g.Node(\"MatMul\", new[] {{ \"{v}_query_t\", \"{v}_key_t\" }}, \"{v}_scores_raw\");");
                        w.Line($"g.Node(\"Mul\", new[] {{ \"{v}_scores_raw\", g.Scalar(1f / global::System.MathF.Sqrt({I(d)})) }}, \"{v}_scores_scaled\");");
                        string scores = masked ? $"\"{v}_scores\"" : $"\"{v}_scores_scaled\"";
                        if (masked) w.Line($"g.Node(\"Add\", new[] {{ \"{v}_scores_scaled\", \"mask_add\" }}, {scores});");
                        w.Line($"g.Node(\"Softmax\", new[] {{ {scores} }}, \"{v}_probs\", (\"axis\", -1));");
                        w.Line($"g.Node(\"MatMul\", new[] {{ \"{v}_probs\", \"{v}_value_t\" }}, \"{v}_context_heads\");");
                        w.Line($"g.Node(\"Transpose\", new[] {{ \"{v}_context_heads\" }}, \"{v}_context_t\", (\"perm\", new int[] {{ 0, 2, 1, 3 }}));");
                        w.Line($"g.Node(\"Reshape\", new[] {{ \"{v}_context_t\", g.Int64(true, 0, 0, {I(e)}) }}, {y});");
                        break;
                    }
                    default: // Relu, Tanh, Sigmoid
                        w.Line($"g.Node(\"{op.Kind}\", new[] {{ {x} }}, {y});");
                        break;
                }
            }
            w.Line($"g.Node(\"Identity\", new[] {{ {Value(s.Output)} }}, \"output\");");
            w.Line($"g.Output(\"output\", new int[] {{ {string.Join(", ", s.Ops[s.Output].OutShape)} }});");
            w.Line("g.Save(path);");
            w.Close();
            w.Line();
        }
    }
}
