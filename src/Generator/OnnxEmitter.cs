using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator
{
    /// <summary>
    /// Emits <c>ExportOnnx(path)</c>: the network's op list, in evaluation mode, as ONNX nodes (opset 17) with the
    /// parameters as initializers under their state-dict names. Networks with an op that has no mapping yet (the
    /// sequence ops: embeddings, attention, token selection, masked means) get a method that says so.
    /// </summary>
    internal static class OnnxEmitter
    {
        private const string G = "global::Compiled.Nets.Serialization.OnnxGraph";

        private static readonly HashSet<OpKind> Supported = new()
        {
            OpKind.Input, OpKind.Conv2d, OpKind.Linear, OpKind.MaxPool2d, OpKind.AvgPool2d, OpKind.BatchNorm2d, OpKind.LayerNorm,
            OpKind.Softmax, OpKind.Flatten, OpKind.Add, OpKind.Relu, OpKind.Gelu, OpKind.Tanh, OpKind.Sigmoid, OpKind.Dropout,
        };

        public static void Emit(SourceWriter w, NetworkSpec s)
        {
            w.Line("/// <summary>Writes the inference graph (evaluation mode) and the weights as an ONNX model, opset 17: input \"input\" [batch, ..InputShape], output \"output\" [batch, ..OutputShape].</summary>");
            w.Open("public void ExportOnnx(string path)");
            var missing = s.Ops.Where(o => !Supported.Contains(o.Kind)).Select(o => o.Kind.ToString()).Distinct().ToList();
            if (s.TokenInput || s.MaxSequence > 0 || missing.Count > 0)
            {
                string what = missing.Count > 0 ? string.Join(", ", missing) : "token-id input";
                w.Line($"throw new global::System.NotSupportedException(\"{s.TypeName}.ExportOnnx: {what} has no ONNX mapping yet; networks of Conv2d, Linear, pools, norms, activations, Flatten, Softmax, Dropout and residual adds export.\");");
                w.Close();
                w.Line();
                return;
            }
            w.Line($"var g = new {G}(\"{s.TypeName}\");");
            w.Line($"g.FloatInput(\"input\", new int[] {{ {string.Join(", ", s.InputShape)} }});");
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
                    default: // Relu, Tanh, Sigmoid
                        w.Line($"g.Node(\"{op.Kind}\", new[] {{ {x} }}, {y});");
                        break;
                }
            }
            w.Line($"g.Node(\"Identity\", new[] {{ {Value(s.Output)} }}, \"output\");");
            w.Line($"g.FloatOutput(\"output\", new int[] {{ {string.Join(", ", s.Ops[s.Output].OutShape)} }});");
            w.Line("g.Save(path);");
            w.Close();
            w.Line();
        }
    }
}
