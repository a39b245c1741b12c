using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>TrainStep (forward in training mode, the loss, backward) and EvaluateLoss.</summary>
    internal static partial class CpuEmitter
    {
        private static void OpenLossMethod(CpuContext c, IReadOnlyList<LossUse> losses, string name, string summary)
        {
            var s = c.Spec;
            var w = c.Writer;
            w.Line($"/// <summary>{summary}</summary>");
            if (!s.IsMultiOutput)
            {
                var loss = losses[0];
                w.Open($"public float {name}({InputParams(s)}, {loss.Targets}, {BatchParams(c.IsSequence)}, global::System.Span<float> {loss.OutputName} = default)");
                w.Line($"CheckInput({InputArgs(s)}, {BatchArgs(c)}, {loss.OutputName}.IsEmpty ? -1 : {loss.OutputName}.Length, \"{name}\");");
                EmitSequenceLocal(c);
            }
            else
            {
                w.Line("/// <param name=\"losses\">Empty, or one value per loss (declaration order): each loss before its weight.</param>");
                w.Open($"public float {name}({InputParams(s)}, {TargetParams(losses)}, {BatchParams(c.IsSequence)}, {OutputParams(s.Outputs.Select(o => o.Name), optional: true)}, global::System.Span<float> losses = default)");
                w.Line($"CheckInput({InputArgs(s)}, {BatchArgs(c)}, -1, \"{name}\");");
                EmitSequenceLocal(c);
                EmitOutputChecks(c, name, optional: true);
                w.Line($"if (!losses.IsEmpty && losses.Length != {losses.Count}) throw new global::System.ArgumentException(\"{s.TypeName}.{name}: losses has \" + losses.Length + \" values, but the network has {losses.Count} losses.\", nameof(losses));");
            }
            foreach (var loss in losses) loss.Definition.EmitTargetCheck(c, loss);
        }

        private static string TargetParams(IReadOnlyList<LossUse> losses) => string.Join(", ", losses.Select(l => l.Targets));
        private static string TargetArgs(IReadOnlyList<LossUse> losses) => string.Join(", ", losses.Select(l => l.TargetName));

        /// <summary>The optional spans after the batch: the output (one output), or each output and the per-loss values.</summary>
        private static string OptionalArgs(NetworkSpec s, IReadOnlyList<LossUse> losses) =>
            s.IsMultiOutput ? string.Join(", ", s.Outputs.Select(o => o.Name)) + ", losses" : losses[0].OutputName;

        private static string OptionalParams(NetworkSpec s, IReadOnlyList<LossUse> losses) => s.IsMultiOutput
            ? OutputParams(s.Outputs.Select(o => o.Name), optional: false) + ", global::System.Span<float> losses"
            : "global::System.Span<float> " + losses[0].OutputName;

        /// <summary>The weighted sum TrainStep and EvaluateLoss return: "loss0 + 0.5f * loss1".</summary>
        private static string WeightedSum(IReadOnlyList<LossUse> losses) =>
            string.Join(" + ", losses.Select(l => l.Weight == 1f ? l.Loss : $"{FloatLiteral(l.Weight)} * {l.Loss}"));

        /// <summary>Each loss's value into the caller's span, and each output into the span given for it.</summary>
        private static void EmitLossAndOutputCopies(CpuContext c, IReadOnlyList<LossUse> losses, System.Func<int, string> value)
        {
            var s = c.Spec;
            c.Line($"if (!losses.IsEmpty) {{ {string.Join(" ", losses.Select((l, i) => $"losses[{i}] = {l.Loss};"))} }}");
            for (int i = 0; i < s.Outputs.Count; i++) c.Line($"if (!{s.Outputs[i].Name}.IsEmpty) {value(i)}.CopyTo({s.Outputs[i].Name});");
        }

        private static void EmitTrainStep(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            var losses = LossUse.Of(s);
            OpenLossMethod(c, losses, "TrainStep", s.IsMultiOutput
                ? "Forward (training mode), each output's mean loss, backward of their weighted sum; gradients are zeroed first. Returns the weighted sum. Needs the instance to itself (no concurrent call)."
                : "Forward (training mode), mean loss, backward; gradients are zeroed first. Returns the loss. Needs the instance to itself (no concurrent call).");
            w.Line($"if (_store.IsReadOnly) throw new global::System.InvalidOperationException(\"{s.TypeName}.TrainStep: the parameters are read-only (MakeReadOnly, for serving), and a training step would change them and the BatchNorm statistics; call Parameters.MakeWritable() first.\");");
            w.Line("var ws = _workspaces.RentTraining(batch, InitialCapacity, \"TrainStep\");");
            w.Line($"try {{ return TrainStepIn(ws, {InputArgs(s)}, {TargetArgs(losses)}, {BatchArgs(c)}, {OptionalArgs(s, losses)}); }}");
            w.Line("finally { _workspaces.ReturnTraining(ws); }");
            w.Close();
            w.Line();
            w.Open($"private float TrainStepIn({Workspace} ws, {InputParams(s)}, {TargetParams(losses)}, {BatchParams(c.IsSequence)}, {OptionalParams(s, losses)})");
            EmitSequenceLocal(c);
            EmitSpans(c, grads: true, withLoss: true);
            w.Line("bool accumulate = _store.AccumulateGradients; // add to the gradients held (micro-batches) instead of replacing them");
            w.Line(plan.WrittenWeights.Count > 0 ? "if (!accumulate) _store.ZeroGradientsExcept(_writtenGrads);" : "if (!accumulate) _store.ZeroGradients();");
            c.EmitNeeds("");
            w.Line("// Gradients accumulate (+=): clear this batch's part of each one that backward will touch.");
            foreach (int id in plan.ClearedGradients) w.Line($"if (n{id}) g{id}.Clear();");
            var written = plan.OverwrittenGradients.Where(i => plan.Regions.Any(r => r.Name == "v" + i)).ToList();
            if (written.Count > 0)
                w.Line($"// Written, not accumulated, by their only backward contribution (no clear needed): {string.Join(", ", written.Select(i => "g" + i))}.");
            w.Line();
            c.Training = true;
            EmitForwardBody(c, withLoss: true);
            w.Line();
            if (!s.IsMultiOutput)
            {
                int o = plan.Storage(s.Output);
                w.Line(s.LossValue >= 0 ? "// loss: the mean of the loss method's result" : "// loss");
                losses[0].Definition.EmitTraining(c, losses[0], plan.Storage(losses[0].Value), Shapes.Size(s.Ops[s.Output].OutShape));
                w.Line($"if (!{losses[0].OutputName}.IsEmpty) v{o}.CopyTo({losses[0].OutputName});");
            }
            else
            {
                w.Line($"// losses: {string.Join(" + ", losses.Select(l => (l.Weight == 1f ? "" : FloatLiteral(l.Weight) + " × ") + l.Definition.Name + "(" + l.OutputName + (l.OutputIndex2 >= 0 ? ", " + s.Outputs[l.OutputIndex2].Name : "") + ")"))}; each gradient scaled by its weight");
                foreach (var l in losses)
                {
                    int o = plan.Storage(l.Value);
                    l.Definition.EmitTraining(c, l, o, Shapes.Size(l.OutShape));
                    if (l.Weight != 1f) w.Line($"{Kernels}WeightedLoss.Scale(g{o}, {FloatLiteral(l.Weight)});");
                    if (l.Weight != 1f && l.Value2 >= 0) w.Line($"{Kernels}WeightedLoss.Scale(g{plan.Storage(l.Value2)}, {FloatLiteral(l.Weight)});");
                }
                w.Line($"float loss = {WeightedSum(losses)};");
                EmitLossAndOutputCopies(c, losses, i => "v" + plan.Storage(s.Outputs[i].Value));
            }
            w.Line();
            w.Line("// backward: the units above in reverse order");
            foreach (var u in plan.BackwardOrder)
            {
                w.Open($"if (n{u.Last})");
                if (u.Primary is { } pool && plan.PoolRelu.Contains(pool.Id))
                {
                    MaxPool2dOp.EmitWithReluBackward(c, u, pool);
                    w.Close();
                    continue;
                }
                if (u.Primary is { } biased && plan.BiasSummedByPool(biased.Id))
                    w.Line($"// {biased.Label}'s bias gradient: summed by the max-pool's backward above");
                else if (u.Stages.Count > 0) EmitChainBackward(c, u);
                if (u.Primary is { } op)
                {
                    w.Line($"// {op.Label} backward");
                    OpTable.Of(op.Kind).EmitBackward(c, op);
                }
                w.Close();
            }
            w.Line("return loss;");
            w.Close();
            w.Line();
        }

        private static void EmitEvaluate(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var losses = LossUse.Of(s);
            OpenLossMethod(c, losses, "EvaluateLoss", s.IsMultiOutput
                ? "The weighted sum of the outputs' mean losses in evaluation mode, without gradients. Safe to call from many threads at once."
                : "The mean loss in evaluation mode, without gradients. Safe to call from many threads at once.");
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"EvaluateLoss\");");
            w.Open("try");
            if (s.LossValue >= 0 && s.IsMultiOutput)
            {
                // A loss method among several outputs' losses: forward with the method's ops in one evaluation pass, then
                // every loss as EvaluateLoss computes them, each output read where the pass left it.
                w.Line($"return EvaluateLossIn(ws, {InputArgs(s)}, {TargetArgs(losses)}, {BatchArgs(c)}, {OptionalArgs(s, losses)});");
                w.Close();
                w.Line("finally { _workspaces.ReturnInference(ws); }");
                w.Close();
                w.Line();
                w.Open($"private float EvaluateLossIn({Workspace} ws, {InputParams(s)}, {TargetParams(losses)}, {BatchParams(c.IsSequence)}, {OptionalParams(s, losses)})");
                EmitSequenceLocal(c);
                EmitSpans(c, grads: false, withLoss: true);
                c.Training = false;
                EmitForwardBody(c, withLoss: true);
                for (int i = 0; i < s.Outputs.Count; i++) w.Line($"var y{i} = v{c.Plan.Storage(s.Outputs[i].Value)};");
                c.RegionsInScope = true;
                foreach (var l in losses) l.Definition.EmitEvaluation(c, l, "y" + l.OutputIndex, Shapes.Size(l.OutShape), $"float {l.Loss} = ");
                c.RegionsInScope = false;
                EmitLossAndOutputCopies(c, losses, i => "y" + i);
                w.Line($"return {WeightedSum(losses)};");
                w.Close();
                w.Line();
                return;
            }
            if (s.LossValue >= 0)
            {
                // The loss method needs the targets: forward and the method's ops in one evaluation pass.
                w.Line($"return EvaluateLossIn(ws, {InputArgs(s)}, {losses[0].TargetName}, {BatchArgs(c)}, {losses[0].OutputName});");
                w.Close();
                w.Line("finally { _workspaces.ReturnInference(ws); }");
                w.Close();
                w.Line();
                w.Open($"private float EvaluateLossIn({Workspace} ws, {InputParams(s)}, {losses[0].Targets}, {BatchParams(c.IsSequence)}, global::System.Span<float> {losses[0].OutputName})");
                EmitSequenceLocal(c);
                EmitSpans(c, grads: false, withLoss: true);
                c.Training = false;
                EmitForwardBody(c, withLoss: true);
                w.Line($"if (!{losses[0].OutputName}.IsEmpty) v{c.Plan.Storage(s.Output)}.CopyTo({losses[0].OutputName});");
                losses[0].Definition.EmitEvaluation(c, losses[0], "", "", "return ");
                w.Close();
                w.Line();
                return;
            }
            if (!s.IsMultiOutput)
            {
                var loss = losses[0];
                w.Line($"var y = ForwardEval(ws, {InputArgs(s)}, {BatchArgs(c)});");
                w.Line($"if (!{loss.OutputName}.IsEmpty) y.CopyTo({loss.OutputName});");
                loss.Definition.EmitEvaluation(c, loss, "y", Shapes.Size(s.Ops[s.Output].OutShape), "return ");
            }
            else
            {
                w.Line($"ForwardEval(ws, {InputArgs(s)}, {BatchArgs(c)}, {string.Join(", ", s.Outputs.Select((_, i) => $"out var y{i}"))});");
                foreach (var l in losses) l.Definition.EmitEvaluation(c, l, "y" + l.OutputIndex, Shapes.Size(l.OutShape), $"float {l.Loss} = ");
                EmitLossAndOutputCopies(c, losses, i => "y" + i);
                w.Line($"return {WeightedSum(losses)};");
            }
            w.Close();
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
        }
    }
}
