using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>
    /// Emits <c>ExportOnnx(path)</c>: the network's op list, in evaluation mode, as ONNX nodes (opset 17) with the
    /// parameters as initializers under their state-dict names: token ids and the attention mask are int64 inputs,
    /// the batch and the sequence length symbolic dimensions. Each op's nodes come from its <see cref="OpDefinition"/>.
    /// </summary>
    internal static class OnnxEmitter
    {
        public static void Emit(SourceWriter w, NetworkSpec s)
        {
            if (s.IsMultiOutput) w.Line("/// <summary>Writes the inference graph (evaluation mode) and the weights as an ONNX model, opset 17: one input per Forward parameter (\"input\" when there is one), one output per element of Forward's tuple, named as it ([batch, ..its shape]).</summary>");
            else w.Line(s.IsMultiInput ? "/// <summary>Writes the inference graph (evaluation mode) and the weights as an ONNX model, opset 17: one input per Forward parameter, named as it ([batch, ..its shape], int64 for token ids), \"attention_mask\" [batch, sequence] (int64, where the network reads it), output \"output\" [batch, ..OutputShape].</summary>" : "/// <summary>Writes the inference graph (evaluation mode) and the weights as an ONNX model, opset 17: input \"input\" [batch, ..InputShape] (int64 token ids for a token network), \"attention_mask\" [batch, sequence] (int64, where the network reads it), output \"output\" [batch, ..OutputShape].</summary>");
            w.Open("public void ExportOnnx(string path)");
            bool sequence = s.MaxSequence > 0;
            bool masked = sequence && s.Ops.Any(o => OpTable.Of(o.Kind).ReadsMaskFor(o));
            w.Line($"var g = new {OnnxGraph}(\"{s.TypeName}\");");
            // One graph input per network input, named as Forward's parameters when there are several.
            foreach (var input in s.IsMultiInput ? s.Inputs.ToArray() : new[] { new InputSpec("input", s.InputShape, s.TokenInput, 0) })
                w.Line($"g.Input(\"{input.Name}\", global::Compiled.Nets.Serialization.OnnxElement.{(input.Tokens ? "Int64" : "Float")}, new int[] {{ {string.Join(", ", input.Shape)} }});");
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
                // The position table is sliced to the input's length.
                string first = s.IsMultiInput ? s.Inputs.First(i => Shapes.HasSequence(i.Shape)).Name : "input";
                w.Line($"g.Node(\"Shape\", new[] {{ \"{first}\" }}, \"input_shape\");");
                w.Line("g.Node(\"Slice\", new[] { \"input_shape\", g.Int64(true, 1), g.Int64(true, 2) }, \"sequence_length\");");
            }
            var c = new OnnxContext(s, w, masked);
            // The inference graph: a [CustomLoss] method's ops (which read the targets) stay out.
            foreach (var op in s.Ops.Where(o => !s.IsLossOp(o.Id))) OpTable.Of(op.Kind).EmitOnnx(c, op);
            // One graph output per output: "output", or each element of Forward's tuple by its name.
            foreach (var (name, value) in s.IsMultiOutput ? s.Outputs.Select(o => (o.Name, o.Value)).ToArray() : new[] { ("output", s.Output) })
            {
                w.Line($"g.Node(\"Identity\", new[] {{ {c.Value(value)} }}, \"{name}\");");
                w.Line($"g.Output(\"{name}\", new int[] {{ {string.Join(", ", s.Ops[value].OutShape)} }});");
            }
            w.Line("g.Save(path);");
            w.Close();
            w.Line();
        }
    }
}
