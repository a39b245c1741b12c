using System.Collections.Generic;
using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;
using Compiled.Nets.Generator.Ops;
using static Compiled.Nets.Generator.Helpers.SourceWriter;

namespace Compiled.Nets.Generator.Planning
{
    /// <summary>
    /// Spec → <see cref="Plan"/> (a pure function), between shape inference and emission. Each decision is a named
    /// pass: units (primary ops with their fused elementwise chains), pool + ReLU, conv + pool, the arena layout,
    /// gradients written by their only contributor, pool + bias gradient, what backward clears, and the Linear
    /// weights whose gradient the GEMM writes.
    /// </summary>
    internal static class Planner
    {
        private sealed class UnitBuilder
        {
            public OpSpec? Primary;
            public int Source;
            public readonly List<PlanStage> Stages = new();
            public int LastIndex;
            public int Last => Stages.Count > 0 ? Stages[Stages.Count - 1].Value : Source;
            public PlanUnit Build() => new(Primary, Source, Stages.ToEquatableArray(), LastIndex);
        }

        /// <summary>The plan of a block (no ops of its own: the networks applying it plan them).</summary>
        public static Plan Empty() => new(EquatableArray<PlanUnit>.Empty, EquatableArray<int>.Empty, EquatableArray<int>.Empty, EquatableArray<Region>.Empty,
            EquatableArray<IntRegion>.Empty, EquatableArray<StatRegion>.Empty, "0", "0", EquatableArray<int>.Empty, EquatableArray<int>.Empty,
            EquatableArray<FusedPair>.Empty, EquatableArray<FusedPair>.Empty, EquatableArray<NormOfSum>.Empty, EquatableArray<int>.Empty, EquatableArray<int>.Empty, EquatableArray<string>.Empty);

        public static Plan Build(NetworkSpec s)
        {
            var storage = Enumerable.Range(0, s.Ops.Count).ToArray();
            var views = new List<int>();
            var biasInChain = new List<int>();
            var units = FormUnits(s, storage, views, biasInChain);
            var poolRelu = FusePoolRelu(units);
            var convPool = FuseConvolutionPool(s, units);
            var regions = LayOutArena(s, poolRelu, biasInChain);
            var built = units.Select(u => u.Build()).ToList();
            var overwritten = SingleWriterGradients(s, storage, built);
            var poolBias = FusePoolBiasGradient(built, overwritten);
            var normAdd = FuseNormOfSum(s, built);
            var cleared = ClearedGradients(s, storage, built, regions, overwritten);
            var writtenWeights = s.Ops.Where(op => op.Kind == OpKind.Linear && s.Ops.Count(o => o.Layer == op.Layer) == 1)
                .Select(op => s.Parameters.First(p => p.Name == s.Layers[op.Layer].StateName + ".weight").Field);

            return new Plan(built.ToEquatableArray(), storage.ToEquatableArray(), views.ToEquatableArray(),
                regions.Regions.ToEquatableArray(), regions.Builder.Ints.ToEquatableArray(), regions.Builder.Stats.ToEquatableArray(),
                regions.ActivationTotal, regions.GradientTotal, biasInChain.ToEquatableArray(), poolRelu.ToEquatableArray(),
                convPool.ToEquatableArray(), poolBias.ToEquatableArray(), normAdd.ToEquatableArray(), overwritten.OrderBy(i => i).ToEquatableArray(),
                cleared.ToEquatableArray(), writtenWeights.ToEquatableArray());
        }

        /// <summary>
        /// Units: every non-elementwise op starts one (with its layer's bias as a first stage when the bias joins the
        /// chain or the kernel adds it); an elementwise op joins the chain that produced its input when nothing else
        /// reads that value, else starts a chain of its own. Views (the input, Flatten) get no unit.
        /// </summary>
        private static List<UnitBuilder> FormUnits(NetworkSpec s, int[] storage, List<int> views, List<int> biasInChain)
        {
            var ops = s.Ops;
            var consumers = Consumers(s);
            var units = new List<UnitBuilder>();
            var unitOfValue = new Dictionary<int, UnitBuilder>();
            foreach (var op in ops)
            {
                var def = OpTable.Of(op.Kind);
                if (op.Kind == OpKind.Input) { views.Add(op.Id); continue; }
                if (def.IsView) { storage[op.Id] = storage[op.Input]; views.Add(op.Id); continue; }
                if (def.IsElementwise)
                {
                    var stage = new PlanStage(false, op.Kind, op.Id, op.Real);
                    if (unitOfValue.TryGetValue(op.Input, out var u) && u.Last == op.Input && consumers[op.Input] == 1)
                    {
                        u.Stages.Add(stage); u.LastIndex = op.Id; unitOfValue[op.Id] = u;
                    }
                    else
                    {
                        var chain = new UnitBuilder { Source = storage[op.Input], LastIndex = op.Id };
                        chain.Stages.Add(stage);
                        units.Add(chain); unitOfValue[op.Id] = chain;
                    }
                    continue;
                }
                var unit = new UnitBuilder { Primary = op, Source = op.Id, LastIndex = op.Id };
                if (def.Bias != BiasPlacement.None && s.Layers[op.Layer].Bias)
                {
                    unit.Stages.Add(new PlanStage(true, op.Kind, op.Id, 0));
                    if (def.Bias == BiasPlacement.InChain) biasInChain.Add(op.Id);
                }
                units.Add(unit); unitOfValue[op.Id] = unit;
            }
            return units.OrderBy(u => u.Primary?.Id ?? u.Stages[0].Value).ToList();
        }

        /// <summary>How many ops read each value (each output of the network counts once more: the loss or the caller reads it).</summary>
        private static int[] Consumers(NetworkSpec s)
        {
            var consumers = new int[s.Ops.Count];
            foreach (var op in s.Ops)
            {
                if (op.Input >= 0) consumers[op.Input]++;
                if (op.Input2 >= 0) consumers[op.Input2]++;
            }
            foreach (int output in Outputs(s)) consumers[output]++;
            return consumers;
        }

        /// <summary>The values Forward returns: its one output, or each element of its tuple.</summary>
        internal static IEnumerable<int> Outputs(NetworkSpec s) =>
            (s.IsMultiOutput ? s.Outputs.Select(o => o.Value) : new[] { s.Output }).Concat(s.LossValue >= 0 ? new[] { s.LossValue } : new int[0]);

        /// <summary>A max-pool followed only by ReLU runs as one kernel (ReLU commutes with max): its pre-ReLU value never exists.</summary>
        private static List<int> FusePoolRelu(List<UnitBuilder> units) =>
            units.Where(u => u.Primary is { Kind: OpKind.MaxPool2d } && u.Stages.Count == 1 && u.Stages[0].Kind == OpKind.Relu && !u.Stages[0].IsBias)
                .Select(u => u.Primary!.Id).ToList();

        /// <summary>
        /// A 2×2, stride-2 max-pool that alone reads a convolution's output (its bias at most in between) takes the
        /// convolution in: on the Winograd path the kernel pools each output tile as it forms it, so the convolution's
        /// output is written only when the kernel falls back to two passes. Backward is unchanged: it needs the pool's
        /// argmax and the convolution's input, never the convolution's output.
        /// </summary>
        private static List<FusedPair> FuseConvolutionPool(NetworkSpec s, List<UnitBuilder> units)
        {
            var consumers = Consumers(s);
            var pairs = new List<FusedPair>();
            foreach (var u in units)
            {
                if (u.Primary is not { Kind: OpKind.MaxPool2d } pool) continue;
                var window = Pool2dArgs.Of(pool);
                if (window.Kernel != 2 || window.Stride != 2 || window.Padding != 0) continue;
                var producer = units.FirstOrDefault(c => c.Primary?.Id == pool.Input);
                if (producer?.Primary is { Kind: OpKind.Conv2d } conv && !Conv2dOp.IsGrouped(s, conv) && consumers[conv.Id] == 1 && producer.Stages.All(st => st.IsBias))
                    pairs.Add(new FusedPair(pool.Id, conv.Id));
            }
            return pairs;
        }

        private sealed class Layout
        {
            public RegionBuilder Builder = null!;
            public List<Region> Regions = new();
            public string ActivationTotal = "0", GradientTotal = "0";
        }

        /// <summary>
        /// The arenas: each op's value (with a gradient), a Linear's raw output before its chain, and what each op saves
        /// for backward, per sample and laid out for T = MaxSequence; then regions shared by all ops of a kind, and the loss's.
        /// </summary>
        private static Layout LayOutArena(NetworkSpec s, List<int> poolRelu, List<int> biasInChain)
        {
            var b = new RegionBuilder(s);
            foreach (var op in s.Ops)
            {
                var def = OpTable.Of(op.Kind);
                if (op.Kind == OpKind.Input || def.IsView) continue;
                // Pool + ReLU: only the argmax; the fused output is the ReLU's value.
                if (poolRelu.Contains(op.Id)) { b.AddInts($"a{op.Id}", op.OutShape); continue; }
                b.Add($"v{op.Id}", op.OutShape, gradient: true);
                if (biasInChain.Contains(op.Id)) b.Add($"r{op.Id}", op.OutShape);
                def.SavedForBackward(b, s, op);
            }
            foreach (var group in s.Ops.GroupBy(o => o.Kind).OrderBy(g => IndexInTable(g.Key)))
                OpTable.Of(group.Key).SharedRegions(b, s, group.ToList());
            foreach (var loss in LossUse.Of(s)) loss.Definition.AddRegions(b, loss);

            var layout = new Layout { Builder = b };
            long offset = 0, gradientOffset = 0;
            foreach (var (name, perSample, max, gradient) in b.Activations)
            {
                string? g = null;
                if (gradient) { g = IntLiteral(gradientOffset); gradientOffset += max; }
                layout.Regions.Add(new Region(name, perSample, max, IntLiteral(offset), g));
                offset += max;
            }
            layout.ActivationTotal = IntLiteral(offset);
            layout.GradientTotal = IntLiteral(gradientOffset);
            return layout;
        }

        private static int IndexInTable(OpKind kind)
        {
            for (int i = 0; i < OpTable.All.Count; i++) if (OpTable.All[i].Kind == kind) return i;
            return int.MaxValue;
        }

        /// <summary>
        /// Gradients with exactly one backward contribution that can write instead of add (a fused chain's input, or the
        /// input of an op whose backward can write it): their buffers need no clearing.
        /// </summary>
        private static HashSet<int> SingleWriterGradients(NetworkSpec s, int[] storage, List<PlanUnit> units)
        {
            var writers = new Dictionary<int, int>();
            var capable = new HashSet<int>();
            void Add(int value, bool canWrite)
            {
                writers[value] = writers.TryGetValue(value, out var n) ? n + 1 : 1;
                if (canWrite) capable.Add(value);
            }
            foreach (var loss in LossUse.Of(s))
            {
                Add(storage[loss.Value], false); // the loss adds into it
                if (loss.Value2 >= 0) Add(storage[loss.Value2], false);
            }
            foreach (var u in units)
            {
                int source = storage[u.Source];
                if (u.Stages.Any(st => !st.IsBias) && s.Ops[source].Kind != OpKind.Input) Add(source, true);
                if (u.Primary is not { } op) continue;
                foreach (int input in new[] { op.Input, op.Input2 })
                {
                    if (input < 0) continue;
                    int st = storage[input];
                    if (s.Ops[st].Kind == OpKind.Input) continue;
                    Add(st, OpTable.Of(op.Kind).CanWriteInputGradient);
                }
            }
            return new HashSet<int>(writers.Where(kv => kv.Value == 1 && capable.Contains(kv.Key)).Select(kv => kv.Key));
        }

        /// <summary>
        /// A max-pool whose backward alone writes a biased convolution's gradient also sums that gradient per channel
        /// (the bias gradient) from the pooled gradients it routes: a quarter of the values, read while in cache,
        /// instead of a second single-threaded pass over the whole convolution output's gradient.
        /// </summary>
        private static List<FusedPair> FusePoolBiasGradient(List<PlanUnit> units, HashSet<int> overwritten)
        {
            var pairs = new List<FusedPair>();
            foreach (var u in units)
                if (u.Primary is { Kind: OpKind.MaxPool2d } pool && units.FirstOrDefault(c => c.Primary is { Kind: OpKind.Conv2d } cv && cv.Id == pool.Input) is { } producer
                    && producer.Stages.Count == 1 && producer.Stages[0].IsBias && overwritten.Contains(pool.Input))
                    pairs.Add(new FusedPair(pool.Id, producer.Primary!.Id));
            return pairs;
        }

        /// <summary>
        /// A layer norm whose input is a residual add that nothing else reads (no chain after the add): the device's norm
        /// kernel forms the sum as it reads it, and its backward sends the input gradient to both operands, so the add's
        /// own launches (the sum, then its gradient to each operand) and the passes over them go.
        /// An operand that a Linear's chain of its bias and a dropout (either or both) alone produces comes into the norm's
        /// kernel too, as the Linear's raw output: the chain's kernels and the values they store (the biased and dropped
        /// values, the mask, which backward draws again) go.
        /// </summary>
        private static List<NormOfSum> FuseNormOfSum(NetworkSpec s, List<PlanUnit> units)
        {
            var consumers = Consumers(s);
            var pairs = new List<NormOfSum>();
            foreach (var u in units)
                if (u.Primary is { Kind: OpKind.LayerNorm } norm && units.FirstOrDefault(a => a.Primary?.Id == norm.Input) is { Primary: { Kind: OpKind.Add } add } producer
                    && producer.Stages.Count == 0 && consumers[add.Id] == 1)
                {
                    var branch = add.Input != add.Input2 ? new[] { add.Input, add.Input2 }.Select(v => units.FirstOrDefault(b => b.Last == v && IsBiasDropoutChain(b)))
                        .FirstOrDefault(b => b is not null && consumers[b.Last] == 1) : null;
                    pairs.Add(branch is null ? new NormOfSum(norm.Id, add.Id) : new NormOfSum(norm.Id, add.Id, branch.Primary!.Id, branch.Last));
                }
            return pairs;
        }

        /// <summary>A Linear followed by its bias, a dropout, or its bias then a dropout, and nothing else.</summary>
        private static bool IsBiasDropoutChain(PlanUnit u)
        {
            if (u.Primary is not { Kind: OpKind.Linear } linear || u.Source != linear.Id || u.Stages.Count == 0 || u.Stages.Count > 2) return false;
            int next = u.StartsWithBias ? 1 : 0;
            return u.Stages.Count == next || (u.Stages.Count == next + 1 && u.Stages[next] is { IsBias: false, Kind: OpKind.Dropout });
        }

        /// <summary>
        /// Gradients accumulate, so backward clears this batch's part of each one it touches — only units' ends and
        /// inputs (values inside a fused chain never see their gradient materialised), and not those written once.
        /// </summary>
        private static List<int> ClearedGradients(NetworkSpec s, int[] storage, List<PlanUnit> units, Layout layout, HashSet<int> overwritten)
        {
            var touched = new HashSet<int>();
            foreach (var u in units)
            {
                touched.Add(storage[u.Last]); touched.Add(storage[u.Source]);
                if (u.Primary is { } op)
                {
                    if (op.Input >= 0) touched.Add(storage[op.Input]);
                    if (op.Input2 >= 0) touched.Add(storage[op.Input2]);
                }
            }
            // Every output: a loss writes its gradient, and one without a loss contributes zero.
            foreach (int output in Outputs(s)) touched.Add(storage[output]);
            var cleared = new List<int>();
            foreach (var r in layout.Regions.Where(r => r.GradientOffset is not null))
            {
                int id = int.Parse(r.Name.Substring(1), System.Globalization.CultureInfo.InvariantCulture);
                if (touched.Contains(id) && s.Ops[id].Kind != OpKind.Input && !overwritten.Contains(id)) cleared.Add(id);
            }
            return cleared;
        }
    }
}
