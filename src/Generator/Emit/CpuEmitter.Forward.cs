using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using Compiled.Nets.Generator.Planning;
using static Compiled.Nets.Generator.Emit.Names;

namespace Compiled.Nets.Generator.Emit
{
    internal static partial class CpuEmitter
    {
        private static void EmitForward(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            if (s.IsMultiOutput) { EmitMultiOutputForward(c); return; }
            w.Line("/// <summary>Compiled inference in evaluation mode (dropout off, BatchNorm running statistics).</summary>");
            w.Line("/// <remarks>Safe to call from many threads at once: each call works in a workspace of its own.</remarks>");
            w.Open($"public void Forward({InputParams(s)}, {BatchParams(c.IsSequence)}, global::System.Span<float> output)");
            w.Line($"CheckInput({InputArgs(s)}, {BatchArgs(c)}, output.Length, \"Forward\");");
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"Forward\");");
            w.Line($"try {{ ForwardEval(ws, {InputArgs(s)}, {BatchArgs(c)}).CopyTo(output); }}");
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
            w.Line("/// <summary>The evaluation-mode forward shared by Forward and EvaluateLoss; returns the output (workspace memory).</summary>");
            w.Open($"private global::System.ReadOnlySpan<float> ForwardEval({Workspace} ws, {InputParams(s)}, {BatchParams(c.IsSequence)})");
            EmitSequenceLocal(c);
            EmitSpans(c, grads: false);
            c.Training = false;
            EmitForwardBody(c);
            w.Line($"return {c.Value(s.Output)};");
            w.Close();
            w.Line();
        }

        /// <summary>Forward returning a tuple: one span per output, and an evaluation forward that gives each output's values.</summary>
        private static void EmitMultiOutputForward(CpuContext c)
        {
            var s = c.Spec;
            var w = c.Writer;
            var names = s.Outputs.Select(o => o.Name).ToList();
            w.Line("/// <summary>Compiled inference in evaluation mode (dropout off, BatchNorm running statistics): each output into its span.</summary>");
            w.Line("/// <remarks>Safe to call from many threads at once: each call works in a workspace of its own.</remarks>");
            w.Open($"public void Forward({InputParams(s)}, {BatchParams(c.IsSequence)}, {OutputParams(names, optional: false)})");
            w.Line($"CheckInput({InputArgs(s)}, {BatchArgs(c)}, -1, \"Forward\");");
            EmitSequenceLocal(c);
            EmitOutputChecks(c, "Forward", optional: false);
            w.Line("var ws = _workspaces.RentInference(batch, InitialCapacity, \"Forward\");");
            w.Open("try");
            w.Line($"ForwardEval(ws, {InputArgs(s)}, {BatchArgs(c)}, {string.Join(", ", names.Select((_, i) => $"out var y{i}"))});");
            for (int i = 0; i < names.Count; i++) w.Line($"y{i}.CopyTo({names[i]});");
            w.Close();
            w.Line("finally { _workspaces.ReturnInference(ws); }");
            w.Close();
            w.Line();
            w.Line("/// <summary>The evaluation-mode forward shared by Forward and EvaluateLoss; gives each output (workspace memory).</summary>");
            w.Open($"private void ForwardEval({Workspace} ws, {InputParams(s)}, {BatchParams(c.IsSequence)}, {string.Join(", ", names.Select((_, i) => $"out global::System.ReadOnlySpan<float> y{i}"))})");
            EmitSequenceLocal(c);
            EmitSpans(c, grads: false);
            c.Training = false;
            EmitForwardBody(c);
            for (int i = 0; i < names.Count; i++) w.Line($"y{i} = {c.Value(s.Outputs[i].Value)}; // {names[i]}");
            w.Close();
            w.Line();
        }

        /// <summary>Each output span: batch × its per-sample size (T known), or empty where optional.</summary>
        private static void EmitOutputChecks(CpuContext c, string method, bool optional)
        {
            var s = c.Spec;
            foreach (var o in s.Outputs)
            {
                var shape = s.Ops[o.Value].OutShape;
                c.Line($"{Runtime}NetworkArguments.CheckOutput(\"{s.TypeName}\", \"{method}\", \"{o.Name}\", {o.Name}.Length, batch, {Shapes.Size(shape)}, \"{string.Join(", ", shape.Select(Shapes.Dim))}\", optional: {(optional ? "true" : "false")});");
            }
        }

        /// <summary>Slices of the workspace's arenas, one per plan region, and the views (input, Flatten); a [CustomLoss]
        /// method's targets and views only <paramref name="withLoss"/> (where the method has the targets).</summary>
        private static void EmitSpans(CpuContext c, bool grads, bool withLoss = false)
        {
            var plan = c.Plan;
            var w = c.Writer;
            w.Line("global::System.Span<float> act = ws.Act.Span;");
            if (grads) w.Line("global::System.Span<float> grad = ws.Grad.Span;");
            w.Line("int cap = ws.Capacity;");
            foreach (var r in plan.Regions)
            {
                w.Line($"var {r.Name} = act.Slice({r.Offset} * cap, {r.PerSample} * batch);");
                if (grads && r.GradientOffset is not null)
                    w.Line($"var g{r.Name.Substring(1)} = grad.Slice({r.GradientOffset} * cap, {r.PerSample} * batch);");
            }
            int ints = 0;
            foreach (var r in plan.IntRegions) { w.Line($"var {r.Name} = new global::System.Span<int>(ws.Ints, {ints} * cap, {r.PerSample} * batch);"); ints += r.PerSample; }
            int stats = 0;
            foreach (var r in plan.Stats) { w.Line($"var {r.Name} = ws.Stats.Span.Slice({stats}, {r.Size});"); stats += r.Size; }
            foreach (int view in plan.Views)
            {
                if (!withLoss && c.Spec.IsLossOp(view)) continue;
                if (c.Spec.Ops[view].Kind == OpKind.Input) { w.Line($"global::System.ReadOnlySpan<{InputElement(c.Spec.Ops[view].Real != 0)}> v{view} = {InputName(c.Spec, view)};"); continue; }
                int storage = plan.Storage(view);
                w.Line($"var v{view} = v{storage};");
                if (grads && c.Spec.Ops[storage].Kind != OpKind.Input) w.Line($"var g{view} = g{storage};");
            }
        }

        /// <summary>The units in order: fused pool calls where the plan says so, else the primary op and its chain; a
        /// [CustomLoss] method's units only <paramref name="withLoss"/>.</summary>
        private static void EmitForwardBody(CpuContext c, bool withLoss = false)
        {
            var plan = c.Plan;
            foreach (var u in plan.Units)
            {
                if (!withLoss && c.Spec.IsLossOp(u.Primary?.Id ?? u.Stages[0].Value)) continue;
                if (u.Primary is { } pooled && plan.IsPooledConvolution(pooled.Id)) continue; // runs inside the pool's call
                if (u.Primary is { } pool && plan.ConvolutionOf(pool.Id) is { } conv)
                {
                    MaxPool2dOp.EmitWithConvolution(c, u, pool, c.Spec.Ops[conv]);
                    if (!plan.PoolRelu.Contains(pool.Id) && u.Stages.Count > 0) EmitChainForward(c, u);
                    continue;
                }
                if (u.Primary is { } reluPool && plan.PoolRelu.Contains(reluPool.Id))
                {
                    MaxPool2dOp.EmitWithRelu(c, u, reluPool);
                    continue;
                }
                if (u.Primary is { } op)
                {
                    c.Line($"// {op.Label}: {Shapes.Batched(op.InShape)} -> {Shapes.Batched(op.OutShape)}");
                    OpTable.Of(op.Kind).EmitForward(c, op);
                }
                var chain = u;
                // A kernel that adds the bias itself leaves the rest of the chain to start from its output.
                if (u.Primary is { } biased && u.StartsWithBias && OpTable.Of(biased.Kind).Bias == BiasPlacement.InKernel)
                    chain = u with { Stages = u.Stages.Skip(1).ToEquatableArray() };
                if (chain.Stages.Count > 0) EmitChainForward(c, chain);
            }
        }
    }
}
