using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    /// <summary>TrainStep (forward in training mode, the loss, backward) and EvaluateLoss.</summary>
    internal static partial class CpuEmitter
    {
        private static void OpenLossMethod(CpuContext c, LossDefinition loss, string name, string summary)
        {
            var w = c.Writer;
            w.Line($"/// <summary>{summary}</summary>");
            w.Open($"public float {name}({InputParams(c.Spec)}, {loss.Targets}, {BatchParams(c.IsSequence)}, global::System.Span<float> {loss.OutputName} = default)");
            w.Line($"CheckInput({InputArgs(c.Spec)}, {BatchArgs(c)}, {loss.OutputName}.IsEmpty ? -1 : {loss.OutputName}.Length, \"{name}\");");
            EmitSequenceLocal(c);
            loss.EmitTargetCheck(c);
        }

        /// <summary>An op's trainable tensors: those its definition declares for its layer, without buffers.</summary>
        private static IEnumerable<ParamSpec> TrainableParams(NetworkSpec s, OpSpec op)
        {
            if (op.Layer < 0) return Enumerable.Empty<ParamSpec>();
            var l = s.Layers[op.Layer];
            var own = new HashSet<string>();
            OpTable.Of(l.Kind).DeclareParameters(l, (suffix, _, _, _, _) => own.Add(l.StateName + "." + suffix));
            return s.Parameters.Where(p => !p.IsBuffer && own.Contains(p.Name));
        }

        private static void EmitNeeds(CpuContext c)
        {
            c.Line("// Which values need a gradient (something trainable lies upstream); frozen parameters cost nothing.");
            foreach (var op in c.Spec.Ops)
            {
                var terms = new List<string>();
                foreach (var p in TrainableParams(c.Spec, op)) terms.Add($"{p.Field}.RequiresGrad");
                if (op.Input >= 0) terms.Add($"n{op.Input}");
                if (op.Input2 >= 0) terms.Add($"n{op.Input2}");
                c.Line($"bool n{op.Id} = {(terms.Count == 0 ? "false" : string.Join(" || ", terms))};");
            }
        }

        private static void EmitTrainStep(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var plan = c.Plan;
            var loss = Losses.Of(s.Loss);
            string outSize = Shapes.Size(s.Ops[s.Output].OutShape);
            OpenLossMethod(c, loss, "TrainStep", "Forward (training mode), mean loss, backward; gradients are zeroed first. Returns the loss. Needs the instance to itself (no concurrent call).");
            w.Line($"if (_store.IsReadOnly) throw new global::System.InvalidOperationException(\"{s.TypeName}.TrainStep: the parameters are read-only (MakeReadOnly, for serving), and a training step would change them and the BatchNorm statistics; call Parameters.MakeWritable() first.\");");
            w.Line("var ws = _workspaces.RentTraining(batch, InitialCapacity, \"TrainStep\");");
            w.Line($"try {{ return TrainStepIn(ws, {InputArgs(s)}, {loss.TargetName}, {BatchArgs(c)}, {loss.OutputName}); }}");
            w.Line("finally { _workspaces.ReturnTraining(ws); }");
            w.Close();
            w.Line();
            w.Open($"private float TrainStepIn({Workspace} ws, {InputParams(s)}, {loss.Targets}, {BatchParams(c.IsSequence)}, global::System.Span<float> {loss.OutputName})");
            EmitSequenceLocal(c);
            EmitSpans(c, grads: true);
            w.Line("bool accumulate = _store.AccumulateGradients; // add to the gradients held (micro-batches) instead of replacing them");
            w.Line(plan.WrittenWeights.Count > 0 ? "if (!accumulate) _store.ZeroGradientsExcept(_writtenGrads);" : "if (!accumulate) _store.ZeroGradients();");
            EmitNeeds(c);
            w.Line("// Gradients accumulate (+=): clear this batch's part of each one that backward will touch.");
            foreach (int id in plan.ClearedGradients) w.Line($"if (n{id}) g{id}.Clear();");
            var written = plan.OverwrittenGradients.Where(i => plan.Regions.Any(r => r.Name == "v" + i)).ToList();
            if (written.Count > 0)
                w.Line($"// Written, not accumulated, by their only backward contribution (no clear needed): {string.Join(", ", written.Select(i => "g" + i))}.");
            w.Line();
            c.Training = true;
            EmitForwardBody(c);
            int o = plan.Storage(s.Output);
            w.Line();
            w.Line("// loss");
            loss.EmitTraining(c, o, outSize);
            w.Line($"if (!{loss.OutputName}.IsEmpty) v{o}.CopyTo({loss.OutputName});");
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
            var loss = Losses.Of(s.Loss);
            string outSize = Shapes.Size(s.Ops[s.Output].OutShape);
            OpenLossMethod(c, loss, "EvaluateLoss", "The mean loss in evaluation mode, without gradients. Safe to call from many threads at once.");
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"EvaluateLoss\");");
            w.Open("try");
            w.Line($"var y = ForwardEval(ws, {InputArgs(s)}, {BatchArgs(c)});");
            w.Line($"if (!{loss.OutputName}.IsEmpty) y.CopyTo({loss.OutputName});");
            loss.EmitEvaluation(c, outSize);
            w.Close();
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
        }
    }
}
