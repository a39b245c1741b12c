namespace Compiled.Nets;

/// <summary>What a tensor in a <see cref="ParameterStore"/> is for; drives weight-decay groups and state-dict exchange.</summary>
public enum ParameterRole
{
    /// <summary>A conv/linear weight (decayed by AdamW).</summary>
    Weight,
    /// <summary>A bias (not decayed).</summary>
    Bias,
    /// <summary>A normalisation scale, LayerNorm/BatchNorm <c>weight</c> (not decayed).</summary>
    NormWeight,
    /// <summary>A normalisation shift, LayerNorm/BatchNorm <c>bias</c> (not decayed).</summary>
    NormBias,
    /// <summary>An embedding table (decayed, as in HF's BERT recipe).</summary>
    Embedding,
    /// <summary>BatchNorm running mean (a buffer: saved, never trained).</summary>
    RunningMean,
    /// <summary>BatchNorm running variance (a buffer).</summary>
    RunningVar,
    /// <summary>BatchNorm <c>num_batches_tracked</c> (a buffer; int64 in PyTorch, stored as float here).</summary>
    BatchesTracked,
}

/// <summary>The precision a read-only store offers its weights in for inference (see <see cref="ParameterStore.MakeReadOnly"/>).</summary>
public enum WeightPrecision
{
    /// <summary>The weights as trained.</summary>
    Float32,
    /// <summary>
    /// Linear-layer weights rounded to bfloat16 (round to nearest even) for batch-1..4 inference, where reading the
    /// weights is the cost: half the bytes. Accumulation stays in float32.
    /// </summary>
    BFloat16,
}

/// <summary>
/// A Linear weight [out, in] held transposed, [in, out], for small-batch inference: float32, or bfloat16 when the store
/// is read-only for <see cref="WeightPrecision.BFloat16"/>; empty means none (see <see cref="ParameterStore.TransposedValue"/>).
/// </summary>
public readonly ref struct TransposedWeights
{
    /// <summary>Float32 weights [in, out].</summary>
    public TransposedWeights(ReadOnlySpan<float> single) { Single = single; }

    /// <summary>Bfloat16 weights [in, out].</summary>
    public TransposedWeights(ReadOnlySpan<ushort> bfloat16) { BFloat16 = bfloat16; }

    /// <summary>The float32 weights, or empty.</summary>
    public ReadOnlySpan<float> Single { get; }

    /// <summary>The bfloat16 weights, or empty.</summary>
    public ReadOnlySpan<ushort> BFloat16 { get; }

    /// <summary>True when neither form is held.</summary>
    public bool IsEmpty => Single.IsEmpty && BFloat16.IsEmpty;

    /// <summary>How many weights are held.</summary>
    public int Length => Single.IsEmpty ? BFloat16.Length : Single.Length;
}

/// <summary>How a tensor is initialised.</summary>
public enum InitKind
{
    /// <summary>All zeros.</summary>
    Zeros,
    /// <summary>All ones.</summary>
    Ones,
    /// <summary>Uniform in [-A, A] (PyTorch's default for conv/linear weights and biases: A = 1/sqrt(fan_in)).</summary>
    Uniform,
    /// <summary>Normal with mean 0 and standard deviation A (PyTorch's default for embeddings: A = 1).</summary>
    Normal,
}

/// <summary>An initialisation rule: a kind and its scale.</summary>
public readonly record struct ParameterInit(InitKind Kind, float Scale)
{
    /// <summary>All zeros.</summary>
    public static ParameterInit Zeros => new(InitKind.Zeros, 0);
    /// <summary>All ones.</summary>
    public static ParameterInit Ones => new(InitKind.Ones, 0);
    /// <summary>Uniform in [-bound, bound].</summary>
    public static ParameterInit Uniform(float bound) => new(InitKind.Uniform, bound);
    /// <summary>Normal(0, std²).</summary>
    public static ParameterInit Normal(float std) => new(InitKind.Normal, std);
}

/// <summary>One named tensor of a network (a parameter or a buffer), at a fixed offset of the store's flat memory.</summary>
public sealed class ParameterInfo
{
    internal ParameterInfo(int index, string name, int[] shape, int offset, ParameterRole role, ParameterInit init, bool isBuffer)
    {
        Index = index; Name = name; Shape = shape; Offset = offset; Role = role; Init = init; IsBuffer = isBuffer;
        long n = 1;
        foreach (int d in shape) n *= d;
        Length = checked((int)n);
    }

    /// <summary>Position in <see cref="ParameterStore.Parameters"/> (or <see cref="ParameterStore.Buffers"/>).</summary>
    public int Index { get; }
    /// <summary>PyTorch state-dict name, e.g. <c>conv1.weight</c>.</summary>
    public string Name { get; }
    /// <summary>Shape in PyTorch's layout (conv weight [out, in, kh, kw], linear weight [out, in]).</summary>
    public IReadOnlyList<int> Shape { get; }
    /// <summary>Offset in floats into the store's value (and gradient) memory.</summary>
    public int Offset { get; }
    /// <summary>Number of elements.</summary>
    public int Length { get; }
    /// <summary>What the tensor is for.</summary>
    public ParameterRole Role { get; }
    /// <summary>The initialisation rule.</summary>
    public ParameterInit Init { get; }
    /// <summary>True for non-trainable buffers (BatchNorm running statistics).</summary>
    public bool IsBuffer { get; }
    /// <summary>True for weights and embeddings (not biases or normalisation parameters): the tensors the Hugging Face
    /// Trainer's grouping decays (<see cref="Training.Optimizer.NoDecayForBiasAndNorm"/>).</summary>
    public bool IsWeightOrEmbedding => Role is ParameterRole.Weight or ParameterRole.Embedding;
    /// <summary>False when frozen: no gradient is computed for it and optimizers leave it untouched.</summary>
    public bool RequiresGrad { get; internal set; } = true;

    /// <summary>The shape as "[64, 1, 3, 3]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    /// <inheritdoc/>
    public override string ToString() => $"{Name} {ShapeText}";
}

/// <summary>Collects a network's tensors in declaration order, then lays them out in one aligned block.</summary>
public sealed class ParameterStoreBuilder
{
    private readonly List<(string Name, int[] Shape, ParameterRole Role, ParameterInit Init)> _parameters = new();
    private readonly List<(string Name, int[] Shape, ParameterRole Role, ParameterInit Init)> _buffers = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Declares a trainable parameter.</summary>
    public void Add(string name, int[] shape, ParameterRole role, ParameterInit init)
    {
        if (!_names.Add(name)) throw new ArgumentException($"A tensor named '{name}' is already declared.", nameof(name));
        _parameters.Add((name, shape, role, init));
    }

    /// <summary>Declares a non-trainable buffer (saved in checkpoints, never optimised).</summary>
    public void AddBuffer(string name, int[] shape, ParameterRole role, ParameterInit init)
    {
        if (!_names.Add(name)) throw new ArgumentException($"A tensor named '{name}' is already declared.", nameof(name));
        _buffers.Add((name, shape, role, init));
    }

    /// <summary>Lays the tensors out (each at a 64-byte aligned offset) and allocates zeroed memory.</summary>
    public ParameterStore Build() => new(Layout(_parameters, false, out int p), p, Layout(_buffers, true, out int b), b);

    private static ParameterInfo[] Layout(List<(string Name, int[] Shape, ParameterRole Role, ParameterInit Init)> items, bool buffers, out int total)
    {
        var infos = new ParameterInfo[items.Count];
        int offset = 0;
        for (int i = 0; i < items.Count; i++)
        {
            var (name, shape, role, init) = items[i];
            infos[i] = new ParameterInfo(i, name, shape, offset, role, init, buffers);
            offset = checked(offset + (infos[i].Length + 15) / 16 * 16);
        }
        total = offset;
        return infos;
    }
}

/// <summary>
/// All parameters, their gradients and the buffers of a network, each in one flat 64-byte aligned block with a named
/// view per tensor (a PyTorch <c>state_dict</c>). Optimizers sweep <see cref="Values"/>/<see cref="Gradients"/>.
/// </summary>
public sealed class ParameterStore : IDisposable
{
    private readonly AlignedBuffer _values, _buffers;
    // Allocated on first use: a store that only serves inference never needs gradients (half its memory, and the
    // start-up time of clearing it).
    private AlignedBuffer? _grads;
    private readonly int _parameterFloats;
    private readonly Dictionary<string, ParameterInfo> _byName;

    internal ParameterStore(ParameterInfo[] parameters, int parameterFloats, ParameterInfo[] buffers, int bufferFloats)
    {
        Parameters = parameters;
        Buffers = buffers;
        _values = new AlignedBuffer(parameterFloats);
        _parameterFloats = parameterFloats;
        _buffers = new AlignedBuffer(bufferFloats);
        _byName = new Dictionary<string, ParameterInfo>(StringComparer.Ordinal);
        foreach (var p in parameters) _byName.Add(p.Name, p);
        foreach (var b in buffers) _byName.Add(b.Name, b);
    }

    /// <summary>Trainable parameters in declaration order.</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }
    /// <summary>Buffers (BatchNorm running statistics) in declaration order.</summary>
    public IReadOnlyList<ParameterInfo> Buffers { get; }
    /// <summary>Total number of trainable scalars.</summary>
    public long Count => Parameters.Sum(p => (long)p.Length);
    /// <summary>Bumped whenever freezing changes, so generated code can cache which gradients it must compute.</summary>
    public int TrainableVersion { get; private set; }

    /// <summary>All parameter values (with alignment gaps, which stay zero).</summary>
    /// <exception cref="InvalidOperationException">While the store is read-only.</exception>
    public Span<float> Values => IsReadOnly ? throw ReadOnlyError("its values") : _values.Span;
    /// <summary>All parameter values, for reading (also while the store is read-only).</summary>
    public ReadOnlySpan<float> ReadValues => _values.Span;
    /// <summary>All gradients, laid out like <see cref="Values"/>.</summary>
    public Span<float> Gradients => Grads.Span;

    private AlignedBuffer Grads
    {
        get
        {
            if (_grads is { } g) return g;
            var created = new AlignedBuffer(_parameterFloats);
            if (Interlocked.CompareExchange(ref _grads, created, null) is { } other) { created.Dispose(); return other; }
            return created;
        }
    }
    /// <summary>All buffer values.</summary>
    public Span<float> BufferValues => _buffers.Span;

    /// <summary>The values of one tensor (parameter or buffer), for reading and writing.</summary>
    /// <exception cref="InvalidOperationException">For a parameter while the store is read-only (buffers stay writable).</exception>
    public Span<float> Value(ParameterInfo p) =>
        p.IsBuffer ? _buffers.Slice(p.Offset, p.Length) : IsReadOnly ? throw ReadOnlyError($"'{p.Name}'") : _values.Slice(p.Offset, p.Length);
    /// <summary>The values of one tensor, for reading (also while the store is read-only): what generated code reads.</summary>
    public ReadOnlySpan<float> ReadValue(ParameterInfo p) => (p.IsBuffer ? _buffers : _values).Slice(p.Offset, p.Length);
    /// <summary>The gradient of one parameter.</summary>
    public Span<float> Gradient(ParameterInfo p) =>
        p.IsBuffer ? throw new ArgumentException($"'{p.Name}' is a buffer and has no gradient.") : Grads.Slice(p.Offset, p.Length);
    /// <summary>The values of the parameter at <paramref name="index"/>.</summary>
    public Span<float> Value(int index) => Value(Parameters[index]);
    /// <summary>The gradient of the parameter at <paramref name="index"/>.</summary>
    public Span<float> Gradient(int index) => Gradient(Parameters[index]);
    /// <summary>The values of the buffer at <paramref name="index"/>.</summary>
    public Span<float> BufferValue(int index) => Value(Buffers[index]);

    /// <summary>Looks a tensor (parameter or buffer) up by state-dict name.</summary>
    /// <exception cref="KeyNotFoundException">Names the missing tensor and lists close matches.</exception>
    public ParameterInfo this[string name] => _byName.TryGetValue(name, out var p) ? p
        : throw new KeyNotFoundException($"No tensor named '{name}'. The network has: {string.Join(", ", _byName.Keys)}.");

    /// <summary>Looks a tensor up by name.</summary>
    public bool TryGet(string name, out ParameterInfo info) => _byName.TryGetValue(name, out info!);

    /// <summary>Every tensor, parameters then buffers, in declaration order (the state dict's keys).</summary>
    public IEnumerable<ParameterInfo> All => Parameters.Concat(Buffers);

    /// <summary>Initialises every tensor by its rule from a seed, in declaration order (deterministic).</summary>
    public void Initialize(ulong seed)
    {
        var rng = new Rng(seed);
        foreach (var p in All)
        {
            var span = Value(p);
            switch (p.Init.Kind)
            {
                case InitKind.Zeros: span.Clear(); break;
                case InitKind.Ones: span.Fill(1f); break;
                case InitKind.Uniform:
                    for (int i = 0; i < span.Length; i++) span[i] = (rng.NextFloat() * 2f - 1f) * p.Init.Scale;
                    break;
                case InitKind.Normal:
                    for (int i = 0; i < span.Length; i++) span[i] = (float)rng.NextGaussian() * p.Init.Scale;
                    break;
            }
        }
    }

    /// <summary>
    /// When true, a compiled TrainStep adds its batch's gradients to those already held instead of starting from zero
    /// (PyTorch's behaviour without <c>zero_grad()</c>): gradient accumulation over micro-batches. Whoever sets it zeroes
    /// the gradients after each optimizer step (<see cref="ZeroGradients"/>) — <c>TrainerOptions.AccumulationSteps</c> does.
    /// </summary>
    public bool AccumulateGradients { get; set; }

    /// <summary>Sets all gradients to zero.</summary>
    public void ZeroGradients() => Grads.Span.Clear();

    /// <summary>
    /// Sets all gradients to zero except those of the trainable parameters in <paramref name="written"/>, which the
    /// caller is about to overwrite (a compiled TrainStep whose GEMM writes a weight's gradient with beta = 0).
    /// </summary>
    public void ZeroGradientsExcept(ReadOnlySpan<ParameterInfo> written)
    {
        var grads = Grads.Span;
        var ps = Parameters;
        int done = 0; // parameters are laid out in order: clear each gap up to the next skipped one in one call
        for (int i = 0; i < ps.Count; i++)
        {
            var p = ps[i];
            bool skip = false;
            if (p.RequiresGrad)
                foreach (var w in written) if (ReferenceEquals(w, p)) { skip = true; break; }
            if (!skip) continue;
            if (p.Offset > done) grads[done..p.Offset].Clear();
            done = p.Offset + p.Length;
        }
        if (grads.Length > done) grads[done..].Clear();
    }

    /// <summary>Freezes (or unfreezes) every parameter whose name starts with one of <paramref name="prefixes"/>.</summary>
    /// <returns>How many parameters changed state.</returns>
    /// <exception cref="ArgumentException">When a prefix matches no parameter (a typo would silently train everything).</exception>
    public int SetRequiresGrad(bool requiresGrad, params string[] prefixes)
    {
        int changed = 0;
        foreach (var prefix in prefixes)
        {
            bool any = false;
            foreach (var p in Parameters)
            {
                if (!p.Name.StartsWith(prefix, StringComparison.Ordinal)) continue;
                any = true;
                if (p.RequiresGrad != requiresGrad) { p.RequiresGrad = requiresGrad; changed++; }
            }
            if (!any) throw new ArgumentException($"No parameter name starts with '{prefix}'. Names: {string.Join(", ", Parameters.Select(p => p.Name))}.", nameof(prefixes));
        }
        TrainableVersion++;
        return changed;
    }

    /// <summary>Freezes parameters by name prefix (e.g. <c>"conv"</c>, <c>"encoder.layers.0."</c>).</summary>
    public int Freeze(params string[] prefixes) => SetRequiresGrad(false, prefixes);

    /// <summary>Unfreezes parameters by name prefix.</summary>
    public int Unfreeze(params string[] prefixes) => SetRequiresGrad(true, prefixes);

    /// <summary>Freezes every parameter except those starting with one of <paramref name="prefixes"/>.</summary>
    public void FreezeAllExcept(params string[] prefixes)
    {
        foreach (var p in Parameters)
            p.RequiresGrad = prefixes.Any(x => p.Name.StartsWith(x, StringComparison.Ordinal));
        TrainableVersion++;
    }

    /// <summary>Copies all values and buffers from a store with the same layout (e.g. best-model restore).</summary>
    /// <exception cref="ArgumentException">When the layouts differ.</exception>
    public void CopyFrom(ParameterStore other)
    {
        if (other.Parameters.Count != Parameters.Count || other.Buffers.Count != Buffers.Count || other.ReadValues.Length != ReadValues.Length)
            throw new ArgumentException("The stores belong to different networks.", nameof(other));
        other.ReadValues.CopyTo(Values);
        other.BufferValues.CopyTo(BufferValues);
    }

    // ------------------------------------------------------------------ read-only inference

    private readonly Dictionary<ParameterInfo, ushort[]> _bf16 = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<ParameterInfo, Array> _transposed = new(ReferenceEqualityComparer.Instance);

    /// <summary>True between <see cref="MakeReadOnly"/> and <see cref="MakeWritable"/>.</summary>
    public bool IsReadOnly { get; private set; }

    /// <summary>The precision offered to inference while read-only (<see cref="WeightPrecision.Float32"/> otherwise).</summary>
    public WeightPrecision InferencePrecision { get; private set; }

    /// <summary>
    /// Makes the parameter values read-only (<see cref="Values"/>, <see cref="Value(ParameterInfo)"/> of a parameter,
    /// optimizer steps and checkpoint loads throw; buffers, gradients and reads stay available) and, with
    /// <see cref="WeightPrecision.BFloat16"/>, lets generated inference read Linear weights as bfloat16 copies made on
    /// first use. The copies cannot go stale: the values they were made from cannot change until
    /// <see cref="MakeWritable"/>, which drops them. (A span taken from <see cref="Value(ParameterInfo)"/> before this
    /// call must not be written to afterwards.) Inference only: the compiled training step keeps float32.
    /// </summary>
    public void MakeReadOnly(WeightPrecision inferencePrecision = WeightPrecision.Float32)
    {
        lock (_bf16)
        {
            if (IsReadOnly && InferencePrecision != inferencePrecision) { _bf16.Clear(); _transposed.Clear(); }
            IsReadOnly = true;
            InferencePrecision = inferencePrecision;
        }
    }

    /// <summary>Makes the values writable again (training, loading) and drops any bfloat16 or transposed copies.</summary>
    public void MakeWritable()
    {
        lock (_bf16)
        {
            IsReadOnly = false;
            InferencePrecision = WeightPrecision.Float32;
            _bf16.Clear();
            _transposed.Clear();
        }
    }

    /// <summary>
    /// The bfloat16 copy of a parameter while the store is read-only with <see cref="WeightPrecision.BFloat16"/> (made
    /// on first request, then reused); empty otherwise, meaning: use the float32 values.
    /// </summary>
    public ReadOnlySpan<ushort> BFloat16Value(ParameterInfo p)
    {
        if (!IsReadOnly || InferencePrecision != WeightPrecision.BFloat16 || p.IsBuffer) return default;
        lock (_bf16)
        {
            if (!IsReadOnly || InferencePrecision != WeightPrecision.BFloat16) return default;
            if (!_bf16.TryGetValue(p, out var copy))
            {
                copy = GC.AllocateUninitializedArray<ushort>(p.Length, pinned: true);
                Kernels.BFloat16.FromSingle(ReadValue(p), copy);
                _bf16.Add(p, copy);
            }
            return copy;
        }
    }

    /// <summary>
    /// A 2-D weight [out, in] transposed to [in, out] while the store is read-only (made on first request, then reused;
    /// bfloat16 when read-only for <see cref="WeightPrecision.BFloat16"/>, float32 otherwise); empty while writable.
    /// Generated batch-1..4 inference asks for it for a Linear layer whose input is a ReLU output, so that the inputs
    /// that are zero skip their rows (<see cref="Kernels.LinearKernels.UsesTransposed"/>). The float32 copy costs the
    /// weight's memory again, the bfloat16 one half of it.
    /// </summary>
    /// <exception cref="ArgumentException">When the parameter is not two-dimensional.</exception>
    public TransposedWeights TransposedValue(ParameterInfo p)
    {
        if (!IsReadOnly || p.IsBuffer) return default;
        if (p.Shape.Count != 2) throw new ArgumentException($"{p.Name} has shape [{string.Join(", ", p.Shape)}]; only a 2-D weight can be transposed.", nameof(p));
        lock (_bf16)
        {
            if (!IsReadOnly) return default;
            bool bf16 = InferencePrecision == WeightPrecision.BFloat16;
            if (!_transposed.TryGetValue(p, out var copy))
            {
                if (bf16)
                {
                    var h = GC.AllocateUninitializedArray<ushort>(p.Length, pinned: true);
                    Kernels.LinearKernels.Transpose(ReadValue(p), p.Shape[0], p.Shape[1], default, h);
                    copy = h;
                }
                else
                {
                    var t = GC.AllocateUninitializedArray<float>(p.Length, pinned: true);
                    Kernels.LinearKernels.Transpose(ReadValue(p), p.Shape[0], p.Shape[1], t, default);
                    copy = t;
                }
                _transposed.Add(p, copy);
            }
            return copy is ushort[] half ? new TransposedWeights(half) : new TransposedWeights((float[])copy);
        }
    }

    private InvalidOperationException ReadOnlyError(string what) =>
        new($"The parameter store is read-only (MakeReadOnly was called for {InferencePrecision} inference), so {what} cannot be written; call MakeWritable() first.");

    /// <summary>Frees the memory.</summary>
    public void Dispose()
    {
        _values.Dispose(); _grads?.Dispose(); _buffers.Dispose();
    }
}
