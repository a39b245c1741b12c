using System.Linq;
using Compiled.Nets.Generator.Helpers;
using Compiled.Nets.Generator.Model;

namespace Compiled.Nets.Generator.Planning
{
    /// <summary>One step of a fused elementwise chain: a layer's bias, or an elementwise op producing <see cref="Value"/>.</summary>
    internal sealed record PlanStage(bool IsBias, OpKind Kind, int Value, double P)
    {
        /// <summary>How comments name the stage.</summary>
        public string Title => IsBias ? "Bias" : Kind.ToString();
    }

    /// <summary>
    /// A unit of execution: a primary op (conv, linear, pool, norm, add, softmax…) followed by a fused chain of
    /// elementwise stages emitted as one loop, or a chain alone over an existing value (<see cref="Primary"/> null).
    /// </summary>
    internal sealed record PlanUnit(OpSpec? Primary, int Source, EquatableArray<PlanStage> Stages, int LastIndex)
    {
        /// <summary>The value the unit leaves.</summary>
        public int Last => Stages.Count > 0 ? Stages[Stages.Count - 1].Value : Source;
        public bool StartsWithBias => Stages.Count > 0 && Stages[0].IsBias;
    }

    /// <summary>A region of the activation arena: per-sample size (an expression of T), size at MaxSequence, and its
    /// offsets per sample in the activation arena and, for a value whose gradient backward needs, the gradient arena.</summary>
    internal sealed record Region(string Name, string PerSample, long Max, string Offset, string? GradientOffset);

    /// <summary>A region of the integer arena (max-pool argmax), per-sample size.</summary>
    internal sealed record IntRegion(string Name, int PerSample);

    /// <summary>Per-batch statistics (BatchNorm's mean and inverse deviation per channel).</summary>
    internal sealed record StatRegion(string Name, int Size);

    /// <summary>A fusion of two ops: a max-pool and the convolution it takes in or whose bias gradient it sums.</summary>
    internal sealed record FusedPair(int Pool, int Conv);

    /// <summary>
    /// A layer norm and the residual add it alone reads; <see cref="Branch"/> is the Linear whose chain — its bias, a
    /// dropout, or both — alone feeds operand <see cref="BranchValue"/> of the add (BERT's dense → dropout → + x), which the
    /// norm's kernel then applies as it reads (−1 when there is none).
    /// </summary>
    internal sealed record NormOfSum(int Norm, int Add, int Branch = -1, int BranchValue = -1);

    /// <summary>
    /// What the emitters read, decided once by the <see cref="Planner"/>: units in forward order, where every value
    /// lives (views alias their input's storage), the arena layout, the fusions, and which gradients backward writes
    /// instead of accumulating (so they need no clearing). Equatable, with no syntax or symbols.
    /// </summary>
    internal sealed record Plan(
        EquatableArray<PlanUnit> Units,
        EquatableArray<int> StorageOf,
        EquatableArray<int> Views,
        EquatableArray<Region> Regions,
        EquatableArray<IntRegion> IntRegions,
        EquatableArray<StatRegion> Stats,
        string ActivationTotal,
        string GradientTotal,
        EquatableArray<int> BiasInChain,
        EquatableArray<int> PoolRelu,
        EquatableArray<FusedPair> ConvPool,
        EquatableArray<FusedPair> PoolBias,
        EquatableArray<NormOfSum> NormAdd,
        EquatableArray<int> OverwrittenGradients,
        EquatableArray<int> ClearedGradients,
        EquatableArray<string> WrittenWeights)
    {
        /// <summary>Where a value lives: itself, or the value a view (Flatten) aliases.</summary>
        public int Storage(int value) => StorageOf[value];

        public Region Region(string name) => Regions.First(r => r.Name == name);

        /// <summary>The convolution a 2×2/2 max-pool takes in, or null.</summary>
        public int? ConvolutionOf(int pool) => ConvPool.Where(p => p.Pool == pool).Select(p => (int?)p.Conv).FirstOrDefault();

        /// <summary>True when the op runs inside a max-pool's call.</summary>
        public bool IsPooledConvolution(int conv) => ConvPool.Any(p => p.Conv == conv);

        /// <summary>The convolution whose bias gradient a max-pool's backward sums, or null.</summary>
        public int? PoolBiasOf(int pool) => PoolBias.Where(p => p.Pool == pool).Select(p => (int?)p.Conv).FirstOrDefault();

        public bool BiasSummedByPool(int conv) => PoolBias.Any(p => p.Conv == conv);

        /// <summary>The residual add a layer norm alone reads (the device computes the sum in the norm's kernel and sends
        /// the norm's input gradient to both operands), or null.</summary>
        public int? AddOfNorm(int norm) => NormAdd.Where(p => p.Norm == norm).Select(p => (int?)p.Add).FirstOrDefault();

        /// <summary>True when a residual add runs inside the call of the layer norm that reads it.</summary>
        public bool IsNormedAdd(int add) => NormAdd.Any(p => p.Add == add);

        /// <summary>The norm-of-sum a layer norm is, or null.</summary>
        public NormOfSum? NormOfSumOf(int norm) => NormAdd.FirstOrDefault(p => p.Norm == norm);

        /// <summary>True when a Linear's chain (bias, dropout) runs inside a layer norm's call (see <see cref="NormOfSum"/>).</summary>
        public bool IsNormedBranch(int linear) => NormAdd.Any(p => p.Branch == linear);

        /// <summary>Units in the order backward visits them.</summary>
        public System.Collections.Generic.IEnumerable<PlanUnit> BackwardOrder => Units.OrderBy(u => u.LastIndex).Reverse();
    }
}
