using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>IMultiNetwork: a network with several inputs or outputs reached through a TensorBatch's named columns, each
    /// passed as the span the class's own TrainStep and EvaluateLoss take.</summary>
    internal static partial class CpuEmitter
    {
        /// <summary>Whether the network implements IMultiNetwork: several inputs or outputs and a loss.</summary>
        internal static bool IsMultiNetwork(NetworkSpec s) => s.IsMultiple && LossUse.Of(s).Count > 0;

        /// <summary>A slot's shape as an int[] literal (T as -1).</summary>
        internal static string ShapeLiteral(IEnumerable<int> shape) => shape.Any() ? $"new int[] {{ {string.Join(", ", shape)} }}" : "global::System.Array.Empty<int>()";

        /// <summary>The mask column of a sequence network's batches (Hugging Face's name for it).</summary>
        internal const string MaskColumn = "attention_mask";

        private static void EmitMultiNetwork(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var losses = LossUse.Of(s);
            string iface = Runtime + "IMultiNetwork";
            string slot = Runtime + "TensorSlot";
            // Output names, shapes and size constants as the class's own methods name them.
            var outputs = s.IsMultiOutput
                ? s.Outputs.Select(o => (o.Name, Shape: s.Ops[o.Value].OutShape, Size: FeaturesConstant(o.Name))).ToList()
                : new List<(string Name, EquatableArray<int> Shape, string Size)> { (losses[0].OutputName, s.Ops[s.Output].OutShape, "OutputFeatures") };
            var inputs = s.IsMultiInput ? s.Inputs.ToList() : new List<InputSpec> { new InputSpec("input", s.InputShape, s.TokenInput, 0) };

            w.Line($"// IMultiNetwork: the Trainer's way in: each column of a TensorBatch, found by name, passed as the span of the same name.");
            w.Line($"private static readonly {slot}[] s_inputs = new {slot}[] {{ {string.Join(", ", inputs.Select(i => $"new(\"{i.Name}\", {ShapeLiteral(i.Shape)}, {(i.Tokens ? "true" : "false")})"))} }};");
            w.Line($"private static readonly {slot}[] s_outputs = new {slot}[] {{ {string.Join(", ", outputs.Select(o => $"new(\"{o.Name}\", {ShapeLiteral(o.Shape)}, false)"))} }};");
            w.Line($"private static readonly {Runtime}LossSlot[] s_losses = new {Runtime}LossSlot[]");
            w.Line("{");
            foreach (var l in losses)
            {
                var target = l.Definition.TargetShape(l);
                w.Line($"    new(\"{l.Definition.Name}\", \"{outputs[l.OutputIndex].Name}\", new {slot}(\"{l.TargetName}\", {ShapeLiteral(target)}, {(l.Definition.ClassIndices ? "true" : "false")}), {FloatLiteral(l.Weight)}),");
            }
            w.Line("};");
            w.Line($"global::System.Collections.Generic.IReadOnlyList<{slot}> {iface}.Inputs => s_inputs;");
            w.Line($"global::System.Collections.Generic.IReadOnlyList<{slot}> {iface}.Outputs => s_outputs;");
            w.Line($"global::System.Collections.Generic.IReadOnlyList<{Runtime}LossSlot> {iface}.Losses => s_losses;");
            w.Line($"int {iface}.MaxSequence => {(c.IsSequence ? "MaxSequence" : "0")};");
            w.Line();

            // A column along T is read cut to the batch's sequence length; others whole.
            string Column(string name, bool integer, EquatableArray<int> shape, string size) => Shapes.HasSequence(shape)
                ? $"batch.{(integer ? "Integers" : "Floats")}(\"{name}\", {Shapes.Product(shape.Skip(1))}, sequence)"
                : $"batch.{(integer ? "Integers" : "Floats")}(\"{name}\", {size})";
            var args = new List<string>();
            foreach (var i in inputs) args.Add(Column(i.Name, i.Tokens, i.Shape, FeaturesConstant(s, i)));
            foreach (var l in losses)
            {
                var target = l.Definition.TargetShape(l);
                args.Add(Column(l.TargetName, l.Definition.ClassIndices, target, Shapes.Size(target)));
            }
            if (c.IsSequence) args.Add($"batch.Integers(\"{MaskColumn}\", 1, sequence)");
            args.Add("batch.Count");
            if (c.IsSequence) args.Add("sequence");
            for (int i = 0; i < outputs.Count; i++)
            {
                string perSample = Shapes.HasSequence(outputs[i].Shape) ? $"sequence * {Shapes.Product(outputs[i].Shape.Skip(1))}" : outputs[i].Size;
                args.Add($"{Runtime}NetworkArguments.OutputBuffer(\"{s.TypeName}\", outputs, {i}, \"{outputs[i].Name}\", batch.Count, {perSample})");
            }
            foreach (var method in new[] { "TrainStep", "EvaluateLoss" })
            {
                w.Open($"float {iface}.{method}({Runtime}Data.TensorBatch batch, float[][] outputs, global::System.Span<float> losses)");
                if (c.IsSequence) w.Line($"int sequence = batch.SequenceLength(\"{MaskColumn}\"); // the batch's longest row: padded to it alone");
                string call = $"{method}(\n    {string.Join(",\n    ", args)}";
                if (s.IsMultiOutput) Lines(w, $"return {call},\n    losses);");
                else
                {
                    w.Line($"if (!losses.IsEmpty && losses.Length != 1) throw new global::System.ArgumentException(\"{s.TypeName}.{method}: losses has \" + losses.Length + \" values, but the network has 1 loss.\", nameof(losses));");
                    Lines(w, $"float loss = {call});");
                    w.Line("if (!losses.IsEmpty) losses[0] = loss;");
                    w.Line("return loss;");
                }
                w.Close();
            }
            w.Line();
        }

        private static void Lines(Helpers.SourceWriter w, string text)
        {
            foreach (var line in text.Split('\n')) w.Line(line);
        }
    }
}
