using Compiled.Nets.Kernels;

namespace Compiled.Nets;

/// <summary>
/// An eager tensor with a tape for reverse-mode autodiff: the slow, obvious reference path. A network's user-written
/// <c>Forward(Tensor)</c> runs on it; the source generator reads the same method as the specification of the compiled
/// code, and tests check the two agree. Shapes include the batch dimension first.
/// </summary>
public sealed class Tensor
{
    private readonly Tensor[] _parents;
    private readonly Action<Tensor>? _backward;

    /// <summary>A float tensor over <paramref name="data"/> (not copied) with the given full shape.</summary>
    /// <exception cref="ArgumentException">When the data length is not the product of the shape.</exception>
    public Tensor(float[] data, params int[] shape) : this(data, null, shape, [], null) { }

    private Tensor(float[] data, int[]? ids, int[] shape, Tensor[] parents, Action<Tensor>? backward)
    {
        long n = 1;
        foreach (int d in shape) n *= d;
        int length = ids?.Length ?? data.Length;
        if (n != length) throw new ArgumentException($"A tensor of shape {ShapeText(shape)} needs {n} elements, but {length} were given.");
        Data = data; Ids = ids; Shape = shape; _parents = parents; _backward = backward;
    }

    /// <summary>An integer tensor of token ids (input of an <see cref="Embedding"/>).</summary>
    public static Tensor FromIds(int[] ids, params int[] shape) => new([], ids, shape, [], null);

    /// <summary>Full shape, batch first.</summary>
    public int[] Shape { get; }
    /// <summary>Values (row-major).</summary>
    public float[] Data { get; }
    /// <summary>Token ids when this is an id tensor.</summary>
    public int[]? Ids { get; }
    /// <summary>The gradient after <see cref="Backward"/>, when this tensor took part in it.</summary>
    public float[]? Grad { get; internal set; }
    /// <summary>Number of elements.</summary>
    public int Length => Ids?.Length ?? Data.Length;
    /// <summary>The shape as "[64, 1, 28, 28]".</summary>
    public string ShapeText() => ShapeText(Shape);
    internal static string ShapeText(int[] shape) => "[" + string.Join(", ", shape) + "]";

    /// <summary>The gradient buffer, created on first use.</summary>
    internal float[] GradBuffer => Grad ??= new float[Data.Length];

    /// <summary>Creates the result of an op: its backward reads <c>result.Grad</c> and accumulates into the parents.</summary>
    internal static Tensor Result(float[] data, int[] shape, Tensor[] parents, Action<Tensor> backward) =>
        new(data, null, shape, parents, backward) { Mask = InheritMask(shape, parents) };

    /// <summary>
    /// The [B, T] attention mask (1 = real token, 0 = padding) of a sequence tensor [B, T, ...], or null. It travels
    /// with the values through ops that keep the two leading dimensions, so sequence reductions can honour it.
    /// </summary>
    public int[]? Mask { get; private init; }

    /// <summary>This tensor (same data, same tape node's values) carrying a [B, T] mask.</summary>
    /// <exception cref="ArgumentException">When the tensor is not [B, T, ...] or the mask is not B×T long.</exception>
    public Tensor WithMask(int[] mask)
    {
        if (Shape.Length < 2 || mask.Length != Shape[0] * Shape[1])
            throw new ArgumentException($"A mask for a tensor of shape {ShapeText()} needs [B, T] = {(Shape.Length < 2 ? "a sequence tensor" : (Shape[0] * Shape[1]).ToString())} values, got {mask.Length}.");
        var x = this;
        return Ids is not null ? new([], Ids, Shape, [], null) { Mask = mask }
            : new(Data, null, Shape, [x], r => Elementwise.AddInPlace(x.GradBuffer, r.Grad)) { Mask = mask };
    }

    private static int[]? InheritMask(int[] shape, Tensor[] parents)
    {
        foreach (var p in parents)
            if (p.Mask is { } m && shape.Length >= 2 && p.Shape.Length >= 2 && shape[0] == p.Shape[0] && shape[1] == p.Shape[1]) return m;
        return null;
    }

    /// <summary>[B, T, ...] → [B, ...]: the values at one sequence position (BERT's [CLS] pooling at position 0).</summary>
    /// <exception cref="ArgumentException">When the tensor is not a sequence or the position is not below T.</exception>
    public Tensor SelectToken(int position)
    {
        var (batch, seq, dim) = SequenceDims("SelectToken");
        if ((uint)position >= (uint)seq) throw new ArgumentException($"SelectToken({position}) needs a sequence longer than {position}, got {ShapeText()}.");
        var y = new float[batch * dim];
        SequenceKernels.SelectForward(y, Data, batch, seq, dim, position);
        var x = this;
        return Result(y, [Shape[0], .. Shape[2..]], [x], r => SequenceKernels.SelectBackward(x.GradBuffer, r.Grad, batch, seq, dim, position));
    }

    /// <summary>[B, T, ...] → [B, ...]: the mean over the real (mask = 1) positions of each sample.</summary>
    public Tensor MeanOverSequence()
    {
        var (batch, seq, dim) = SequenceDims("MeanOverSequence");
        var y = new float[batch * dim];
        var mask = Mask ?? [];
        SequenceKernels.MeanForward(y, Data, mask, batch, seq, dim);
        var x = this;
        return Result(y, [Shape[0], .. Shape[2..]], [x], r => SequenceKernels.MeanBackward(x.GradBuffer, r.Grad, mask, batch, seq, dim));
    }

    private (int Batch, int Seq, int Dim) SequenceDims(string op)
    {
        if (Shape.Length < 3 || Ids is not null) throw new ArgumentException($"{op} needs a float sequence tensor [B, T, ...], got {ShapeText()}{(Ids is null ? "" : " token ids")}.");
        int dim = 1;
        for (int i = 2; i < Shape.Length; i++) dim *= Shape[i];
        return (Shape[0], Shape[1], dim);
    }

    /// <summary>Runs a layer.</summary>
    public Tensor Apply(ILayer layer) => layer.Forward(this);

    /// <summary>Runs layers in order (a stack of sub-networks).</summary>
    public Tensor Apply(IReadOnlyList<ILayer> layers)
    {
        var x = this;
        foreach (var l in layers) x = l.Forward(x);
        return x;
    }

    private Tensor Map(Func<float, float> f, Func<float, float, float, float> grad)
    {
        var y = new float[Data.Length];
        for (int i = 0; i < y.Length; i++) y[i] = f(Data[i]);
        var x = this;
        return Result(y, Shape, [x], r =>
        {
            var g = x.GradBuffer;
            for (int i = 0; i < y.Length; i++) g[i] += grad(x.Data[i], y[i], r.Grad![i]);
        });
    }

    /// <summary>max(x, 0).</summary>
    public Tensor Relu() => Map(Elementwise.Relu, (_, y, g) => Elementwise.ReluGrad(y, g));
    /// <summary>GELU (erf form).</summary>
    public Tensor Gelu() => Map(Elementwise.Gelu, (x, _, g) => Elementwise.GeluGrad(x, g));
    /// <summary>|x| (<c>torch.abs</c>; the gradient at 0 is 0).</summary>
    public Tensor Abs() => Map(Elementwise.Abs, (x, _, g) => Elementwise.AbsGrad(x, g));
    /// <summary>eˣ (<c>torch.exp</c>).</summary>
    public Tensor Exp() => Map(Elementwise.Exp, (_, y, g) => Elementwise.ExpGrad(y, g));
    /// <summary>ln x (<c>torch.log</c>).</summary>
    public Tensor Log() => Map(Elementwise.Log, (x, _, g) => Elementwise.LogGrad(x, g));
    /// <summary>tanh.</summary>
    public Tensor Tanh() => Map(Elementwise.Tanh, (_, y, g) => Elementwise.TanhGrad(y, g));
    /// <summary>Logistic sigmoid.</summary>
    public Tensor Sigmoid() => Map(Elementwise.Sigmoid, (_, y, g) => Elementwise.SigmoidGrad(y, g));
    /// <summary>Leaky ReLU: x for x &gt; 0, else <paramref name="negativeSlope"/>·x (<c>F.leaky_relu</c>).</summary>
    public Tensor LeakyRelu(double negativeSlope = 0.01)
    {
        float slope = (float)negativeSlope;
        return Map(x => Elementwise.LeakyRelu(x, slope), (x, _, g) => Elementwise.LeakyReluGrad(x, g, slope));
    }
    /// <summary>SiLU (swish): x·σ(x).</summary>
    public Tensor Silu() => Map(Elementwise.Silu, (x, _, g) => Elementwise.SiluGrad(x, g));
    /// <summary>ELU: x for x &gt; 0, else <paramref name="alpha"/>·(eˣ − 1).</summary>
    public Tensor Elu(double alpha = 1.0)
    {
        float a = (float)alpha;
        return Map(x => Elementwise.Elu(x, a), (x, _, g) => Elementwise.EluGrad(x, g, a));
    }
    /// <summary>Hard swish: x·ReLU6(x + 3)/6.</summary>
    public Tensor Hardswish() => Map(Elementwise.Hardswish, (x, _, g) => Elementwise.HardswishGrad(x, g));

    /// <summary>Softmax over the last dimension; of a masked sequence [B, T], over its kept positions (as compiled).</summary>
    public Tensor Softmax() => Shape.Length == 2 && Mask is not null ? Softmax(1) : OverRows(SoftmaxKernels.Forward, SoftmaxKernels.Backward);

    /// <summary>log-softmax over the last dimension (<c>F.log_softmax(x, -1)</c>).</summary>
    public Tensor LogSoftmax() => OverRows(LogSoftmaxKernels.Forward, LogSoftmaxKernels.Backward);

    /// <summary>softmax over dimension <paramref name="dim"/> (<c>F.softmax(x, dim)</c>; the batch is 0, negative from the end).</summary>
    public Tensor Softmax(int dim) => Along(dim, log: false);

    /// <summary>log-softmax over dimension <paramref name="dim"/> (<c>F.log_softmax(x, dim)</c>).</summary>
    public Tensor LogSoftmax(int dim) => Along(dim, log: true);

    private Tensor Along(int dim, bool log)
    {
        if (dim < 0) dim += Shape.Length;
        if (dim < 1 || dim >= Shape.Length) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Softmax: the dimension must be in [1, {Shape.Length}) for {ShapeText()} (0 is the batch).");
        if (dim == 1 && Mask is { } mask)
        {
            // Over the masked sequence: padding gets no probability (its log would be −∞).
            if (log) throw new ArgumentException($"LogSoftmax over the masked sequence of {ShapeText()} would be −∞ at padding; take Softmax there.", nameof(dim));
            int seq = Shape[1], perPosition = Data.Length / (Shape[0] * seq);
            var p = new float[Data.Length];
            SoftmaxKernels.ForwardOverSequence(p, Data, mask, Shape[0], seq, perPosition);
            var input = this;
            return Result(p, Shape, [input], r => SoftmaxKernels.BackwardAlong(input.GradBuffer, r.Grad, p, Shape[0], seq, perPosition, log: false));
        }
        if (dim == Shape.Length - 1) return log ? LogSoftmax() : Softmax();
        int inner = 1;
        for (int d = dim + 1; d < Shape.Length; d++) inner *= Shape[d];
        int size = Shape[dim], outer = Data.Length / (size * inner);
        var y = new float[Data.Length];
        SoftmaxKernels.ForwardAlong(y, Data, outer, size, inner, log);
        var x = this;
        return Result(y, Shape, [x], r => SoftmaxKernels.BackwardAlong(x.GradBuffer, r.Grad, y, outer, size, inner, log));
    }

    private delegate void RowsForward(Span<float> y, ReadOnlySpan<float> x, int rows, int cols);
    private delegate void RowsBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<float> y, int rows, int cols);

    /// <summary>A row-wise op over the last dimension whose backward reads its output.</summary>
    private Tensor OverRows(RowsForward forward, RowsBackward backward)
    {
        int cols = Shape[^1], rows = Data.Length / cols;
        var y = new float[Data.Length];
        forward(y, Data, rows, cols);
        var x = this;
        return Result(y, Shape, [x], r => backward(x.GradBuffer, r.Grad, y, rows, cols));
    }

    /// <summary>Flattens every dimension after the batch.</summary>
    public Tensor Flatten()
    {
        var x = this;
        return Result(Data, [Shape[0], Data.Length / Math.Max(1, Shape[0])], [x], r => Elementwise.AddInPlace(x.GradBuffer, r.Grad));
    }

    /// <summary>Merges dimensions <paramref name="startDim"/>… into one (<c>torch.flatten(x, startDim)</c>; the batch is
    /// dimension 0, so <c>Flatten(2)</c> turns [B, T, 12, 64] into [B, T, 768]). A view: no copy.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="startDim"/> is not in [1, rank).</exception>
    public Tensor Flatten(int startDim)
    {
        if (startDim < 0) startDim += Shape.Length;
        if (startDim < 1 || startDim >= Shape.Length) throw new ArgumentOutOfRangeException(nameof(startDim), startDim, $"Flatten: the start dimension must be in [1, {Shape.Length}) for a tensor of shape {ShapeText()} (0 is the batch).");
        int merged = 1;
        for (int d = startDim; d < Shape.Length; d++) merged *= Shape[d];
        return Reshape([.. Shape[..startDim], merged]);
    }

    /// <summary>Splits dimension <paramref name="dim"/> into <paramref name="sizes"/> (<c>torch.unflatten</c>; one size may
    /// be -1, inferred): [B, T, 768].Unflatten(-1, 12, 64) is [B, T, 12, 64], attention's heads. A view: no copy.</summary>
    /// <exception cref="ArgumentException">When the sizes do not multiply to that dimension, or it is the batch.</exception>
    public Tensor Unflatten(int dim, params int[] sizes)
    {
        if (dim < 0) dim += Shape.Length;
        if (dim < 1 || dim >= Shape.Length) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Unflatten: the dimension must be in [1, {Shape.Length}) for a tensor of shape {ShapeText()} (0 is the batch).");
        var resolved = (int[])sizes.Clone();
        int known = 1, infer = -1;
        for (int i = 0; i < resolved.Length; i++)
        {
            if (resolved[i] == -1 && infer < 0) { infer = i; continue; }
            if (resolved[i] <= 0) throw new ArgumentException($"Unflatten: sizes ({string.Join(", ", sizes)}) must be positive, with at most one -1.");
            known *= resolved[i];
        }
        if (infer >= 0 && known > 0 && Shape[dim] % known == 0) resolved[infer] = Shape[dim] / known;
        if (resolved.Aggregate(1, (a, b) => a * b) != Shape[dim] || resolved.Length == 0)
            throw new ArgumentException($"Unflatten: dimension {dim} of {ShapeText()} has {Shape[dim]} values, which sizes ({string.Join(", ", sizes)}) do not split.");
        return Reshape([.. Shape[..dim], .. resolved, .. Shape[(dim + 1)..]]);
    }

    /// <summary>The slice [start, start + length) of dimension <paramref name="dim"/> (<c>torch.narrow</c>; the batch is 0):
    /// splits a tensor, e.g. the two halves of a gated linear unit. Copies.</summary>
    /// <exception cref="ArgumentException">When the slice is outside the dimension or it is the batch.</exception>
    public Tensor Narrow(int dim, int start, int length)
    {
        if (dim < 0) dim += Shape.Length;
        if (dim < 1 || dim >= Shape.Length || start < 0 || length <= 0 || start + length > Shape[dim])
            throw new ArgumentException($"Narrow({dim}, {start}, {length}) does not fit {ShapeText()} (dimension 0 is the batch).");
        int inner = 1;
        for (int d = dim + 1; d < Shape.Length; d++) inner *= Shape[d];
        int outer = Data.Length / (Shape[dim] * inner), xBlock = Shape[dim] * inner, offset = start * inner, yBlock = length * inner;
        var y = new float[outer * yBlock];
        ConcatKernels.NarrowForward(y, Data, outer, xBlock, offset, yBlock);
        var shape = (int[])Shape.Clone();
        shape[dim] = length;
        var x = this;
        return Result(y, shape, [x], r => ConcatKernels.NarrowBackward(x.GradBuffer, r.Grad, outer, xBlock, offset, yBlock));
    }

    /// <summary>Splits dimension <paramref name="dim"/> into <paramref name="chunks"/> pieces of ⌈size / chunks⌉, the last
    /// smaller (<c>torch.chunk</c>; like it, fewer pieces when the size does not need them all): <c>var (a, b) =
    /// x.Chunk(2, -1)</c>, a gated unit's halves. Each piece is a <see cref="Narrow"/>.</summary>
    /// <exception cref="ArgumentException">When <paramref name="chunks"/> is not positive, or the slice does not fit.</exception>
    public TensorPieces Chunk(int chunks, int dim)
    {
        if (chunks <= 0) throw new ArgumentException($"Chunk: {chunks} chunks; give at least one.", nameof(chunks));
        int d = dim < 0 ? dim + Shape.Length : dim;
        if (d < 1 || d >= Shape.Length) throw new ArgumentException($"Chunk: dimension {dim} is not one of {ShapeText()} after the batch.", nameof(dim));
        return Split(SplitSizes.OfChunks(Shape[d], chunks), dim);
    }

    /// <summary>Splits dimension <paramref name="dim"/> into pieces of <paramref name="size"/>, the last smaller
    /// (<c>torch.split(x, size, dim)</c>).</summary>
    /// <exception cref="ArgumentException">When <paramref name="size"/> is not positive, or the dimension is the batch.</exception>
    public TensorPieces Split(int size, int dim)
    {
        if (size <= 0) throw new ArgumentException($"Split: pieces of {size}; give a positive size.", nameof(size));
        int d = dim < 0 ? dim + Shape.Length : dim;
        if (d < 1 || d >= Shape.Length) throw new ArgumentException($"Split: dimension {dim} is not one of {ShapeText()} after the batch.", nameof(dim));
        return Split(SplitSizes.OfSize(Shape[d], size), dim);
    }

    /// <summary>Splits dimension <paramref name="dim"/> into pieces of the given <paramref name="sizes"/>, which must add up
    /// to it (<c>torch.split(x, [sizes], dim)</c>).</summary>
    /// <exception cref="ArgumentException">When the sizes are not positive or do not add up to the dimension.</exception>
    public TensorPieces Split(int[] sizes, int dim)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        int d = dim < 0 ? dim + Shape.Length : dim;
        if (d < 1 || d >= Shape.Length) throw new ArgumentException($"Split: dimension {dim} is not one of {ShapeText()} after the batch.", nameof(dim));
        if (sizes.Length == 0 || sizes.Any(v => v <= 0) || sizes.Sum() != Shape[d])
            throw new ArgumentException($"Split: sizes ({string.Join(", ", sizes)}) must be positive and add up to dimension {dim} of {ShapeText()}, which has {Shape[d]}.", nameof(sizes));
        var pieces = new Tensor[sizes.Length];
        for (int i = 0, start = 0; i < sizes.Length; start += sizes[i], i++) pieces[i] = Narrow(d, start, sizes[i]);
        return new TensorPieces(pieces);
    }

    /// <summary>Reorders the dimensions (<c>torch.permute</c>; the batch is dimension 0 and stays first): [B, T, H, D]
    /// .Permute(0, 2, 1, 3) is [B, H, T, D]. Copies.</summary>
    /// <exception cref="ArgumentException">When <paramref name="dims"/> is not a permutation keeping the batch first.</exception>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Shape.Length || dims.Length == 0 || dims[0] != 0 || dims.Order().Where((d, i) => d != i).Any())
            throw new ArgumentException($"Permute({string.Join(", ", dims)}): a permutation of the {Shape.Length} dimensions of {ShapeText()} that keeps the batch (0) first is needed.");
        int[] sample = Shape[1..], perm = dims[1..].Select(d => d - 1).ToArray();
        var y = new float[Data.Length];
        ShapeKernels.Permute(y, Data, Shape[0], sample, perm);
        var x = this;
        return Result(y, [Shape[0], .. perm.Select(p => sample[p])], [x], r => ShapeKernels.PermuteBackward(x.GradBuffer, r.Grad, Shape[0], sample, perm));
    }

    /// <summary>Swaps two dimensions (<c>torch.transpose</c>; not the batch, dimension 0). Copies.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        if (dim0 < 0) dim0 += Shape.Length;
        if (dim1 < 0) dim1 += Shape.Length;
        var dims = Enumerable.Range(0, Shape.Length).ToArray();
        if ((uint)dim0 < (uint)dims.Length && (uint)dim1 < (uint)dims.Length) (dims[dim0], dims[dim1]) = (dims[dim1], dims[dim0]);
        return Permute(dims);
    }

    /// <summary>Matrix products per sample (<c>torch.matmul</c> with equal leading dimensions): [B, …, M, K] · [B, …, K, N]
    /// → [B, …, M, N].</summary>
    /// <exception cref="ArgumentException">When the leading dimensions differ or the inner ones do not match.</exception>
    public Tensor MatMul(Tensor other) => MatMul(this, other);

    /// <summary>As <see cref="MatMul(Tensor)"/>: <c>a · b</c>.</summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Shape.Length < 3 || a.Shape.Length != b.Shape.Length || !a.Shape.AsSpan(0, a.Shape.Length - 2).SequenceEqual(b.Shape.AsSpan(0, b.Shape.Length - 2)) || a.Shape[^1] != b.Shape[^2])
            throw new ArgumentException($"MatMul of {a.ShapeText()} and {b.ShapeText()}: needs [B, …, M, K] and [B, …, K, N] with the same leading dimensions.");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1], count = a.Data.Length / (m * k);
        var y = new float[count * m * n];
        MatMulKernels.Forward(y, a.Data, b.Data, count, m, k, n);
        return Result(y, [.. a.Shape[..^1], n], [a, b], r => MatMulKernels.Backward(a.GradBuffer, b.GradBuffer, r.Grad, a.Data, b.Data, count, m, k, n));
    }

    /// <summary>Reinterprets the data with another full shape, the batch included, of the same element count; one size
    /// may be -1, inferred (<c>x.reshape(-1, 4, 16)</c>, <c>x.view(…)</c>).</summary>
    /// <exception cref="ArgumentException">When the sizes do not hold the tensor's elements.</exception>
    public Tensor Reshape(params int[] shape)
    {
        var resolved = (int[])shape.Clone();
        int infer = Array.IndexOf(resolved, -1);
        long known = resolved.Where(v => v != -1).Aggregate(1L, (a, b) => a * b);
        if (resolved.Count(v => v == -1) > 1 || resolved.Any(v => v <= 0 && v != -1))
            throw new ArgumentException($"Reshape: sizes ({string.Join(", ", shape)}) must be positive, with at most one -1.");
        if (infer >= 0 && known > 0 && Length % known == 0) resolved[infer] = (int)(Length / known);
        if (resolved.Aggregate(1L, (a, b) => a * b) != Length)
            throw new ArgumentException($"Reshape: {ShapeText()} has {Length} values, which sizes ({string.Join(", ", shape)}) do not hold.");
        var x = this;
        return Result(Data, resolved, [x], r => Elementwise.AddInPlace(x.GradBuffer, r.Grad));
    }

    /// <summary><see cref="Reshape"/> under PyTorch's other name (a view: the data are shared).</summary>
    public Tensor View(params int[] shape) => Reshape(shape);

    /// <summary>2-D max pooling on [B, C, H, W].</summary>
    public Tensor MaxPool2d(int kernel, int stride = 0, int padding = 0) => new MaxPool2d(kernel, stride, padding).Forward(this);
    /// <summary>2-D average pooling on [B, C, H, W].</summary>
    public Tensor AvgPool2d(int kernel, int stride = 0, int padding = 0) => new AvgPool2d(kernel, stride, padding).Forward(this);
    /// <summary>Dropout (active only in <see cref="Eager.Training"/>).</summary>
    /// <summary>Adaptive average pooling of [B, C, H, W] to [B, C, n, n] (<c>F.adaptive_avg_pool2d</c>; n = 1 pools globally).</summary>
    public Tensor AdaptiveAvgPool2d(int outputSize) => new AdaptiveAvgPool2d(outputSize).Forward(this);
    public Tensor Dropout(double p) => new Dropout(p).Forward(this);

    /// <summary>Upsampling of [B, C, H, W] by an integer factor (<c>F.interpolate(scale_factor=…)</c>).</summary>
    public Tensor Upsample(int scaleFactor, UpsampleMode mode = UpsampleMode.Nearest) => new Upsample(scaleFactor, mode).Forward(this);

    /// <summary>Channel dropout (<c>F.dropout2d</c>): whole channels of a sample zeroed in training mode.</summary>
    public Tensor Dropout2d(double p) => new Dropout2d(p).Forward(this);

    /// <summary>Elementwise sum of equal shapes (residual connection).</summary>
    /// <exception cref="ArgumentException">When the shapes differ.</exception>
    public static Tensor operator +(Tensor a, Tensor b)
    {
        if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
            throw new ArgumentException($"Cannot add tensors of shapes {a.ShapeText()} and {b.ShapeText()}.");
        var y = new float[a.Data.Length];
        Elementwise.Add(y, a.Data, b.Data);
        return Result(y, a.Shape, [a, b], r =>
        {
            Elementwise.AddInPlace(a.GradBuffer, r.Grad);
            Elementwise.AddInPlace(b.GradBuffer, r.Grad);
        });
    }

    /// <summary>a − b, broadcasting per sample: the batch (first dimension) equal on both sides, the per-sample shapes
    /// aligned from the right with each dimension equal or 1 on one side — as the compiled network does.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Binary(BinaryOp.Subtract, a, b, "subtract");

    /// <summary>a · b elementwise, broadcasting per sample as <c>-</c> does (e.g. [B, C, H, W] · [B, C, 1, 1] gates channels).</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Binary(BinaryOp.Multiply, a, b, "multiply");

    /// <summary>x · c for a constant c (<c>x * 0.5f</c>; attention and residual scaling).</summary>
    public static Tensor operator *(Tensor x, float c) => x.Map(v => v * c, (_, _, g) => g * c);
    /// <summary>c · x.</summary>
    public static Tensor operator *(float c, Tensor x) => x * c;
    /// <summary>x / c for a constant c.</summary>
    public static Tensor operator /(Tensor x, float c) => x.Map(v => v / c, (_, _, g) => g / c);
    /// <summary>x + c for a constant c.</summary>
    public static Tensor operator +(Tensor x, float c) => x.Map(v => v + c, (_, _, g) => g);
    /// <summary>c + x.</summary>
    public static Tensor operator +(float c, Tensor x) => x + c;
    /// <summary>x − c for a constant c.</summary>
    public static Tensor operator -(Tensor x, float c) => x + -c;
    /// <summary>c − x (<c>1f - gate</c>).</summary>
    public static Tensor operator -(float c, Tensor x) => x.Map(v => c - v, (_, _, g) => -g);

    private static Tensor Binary(BinaryOp op, Tensor a, Tensor b, string verb)
    {
        if (a.Shape.Length == 0 || b.Shape.Length == 0 || a.Shape[0] != b.Shape[0])
            throw new ArgumentException($"Cannot {verb} tensors of shapes {a.ShapeText()} and {b.ShapeText()}: both need the same batch as their first dimension.");
        int[] sa = a.Shape[1..], sb = b.Shape[1..];
        int rank = Math.Max(sa.Length, sb.Length);
        var sample = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            int i = sa.Length - rank + d, j = sb.Length - rank + d;
            int n = i >= 0 ? sa[i] : 1, m = j >= 0 ? sb[j] : 1;
            if (n != m && n != 1 && m != 1) throw new ArgumentException($"Cannot {verb} tensors of shapes {a.ShapeText()} and {b.ShapeText()}: their per-sample shapes do not broadcast.");
            sample[d] = Math.Max(n, m);
        }
        int batch = a.Shape[0];
        var y = new float[batch * sample.Aggregate(1, (p, d) => p * d)];
        BinaryKernels.Forward(op, y, a.Data, b.Data, batch, sample, sa, sb);
        return Result(y, [batch, .. sample], [a, b], r => BinaryKernels.Backward(op, a.GradBuffer, b.GradBuffer, r.Grad, a.Data, b.Data, batch, sample, sa, sb));
    }

    /// <summary>
    /// Concatenates tensors along <paramref name="dim"/> (<c>torch.cat</c>: dimensions count the batch, so 1 is the
    /// channels of [B, C, H, W]; negative counts from the end). Every other dimension must be equal.
    /// </summary>
    public static Tensor Concat(int dim, params Tensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0) throw new ArgumentException("Concat needs at least one tensor.", nameof(tensors));
        var result = tensors[0];
        for (int i = 1; i < tensors.Length; i++) result = Concat2(dim, result, tensors[i]);
        return result;
    }

    private static Tensor Concat2(int dim, Tensor a, Tensor b)
    {
        int rank = a.Shape.Length, d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"Concat: dimension {dim} is outside a tensor of shape {a.ShapeText()}.");
        bool fits = b.Shape.Length == rank;
        for (int k = 0; fits && k < rank; k++) fits = k == d || a.Shape[k] == b.Shape[k];
        if (!fits) throw new ArgumentException($"Concat along dimension {dim}: shapes {a.ShapeText()} and {b.ShapeText()} differ elsewhere.");
        int outer = 1, inner = 1;
        for (int k = 0; k < d; k++) outer *= a.Shape[k];
        for (int k = d + 1; k < rank; k++) inner *= a.Shape[k];
        int aBlock = a.Shape[d] * inner, bBlock = b.Shape[d] * inner;
        var shape = (int[])a.Shape.Clone();
        shape[d] += b.Shape[d];
        var y = new float[a.Data.Length + b.Data.Length];
        ConcatKernels.Forward(y, a.Data, b.Data, outer, aBlock, bBlock);
        return Result(y, shape, [a, b], r => ConcatKernels.Backward(a.GradBuffer, b.GradBuffer, r.Grad, outer, aBlock, bBlock));
    }

    /// <summary>Mean softmax cross-entropy of [B, K] logits against class indices.</summary>
    public Tensor CrossEntropy(int[] labels, float labelSmoothing = 0f)
    {
        if (Shape.Length != 2) throw new ArgumentException($"CrossEntropy needs [B, K] logits, got {ShapeText()}.");
        int rows = Shape[0], k = Shape[1];
        if (labels.Length != rows) throw new ArgumentException($"CrossEntropy got {labels.Length} labels for {rows} rows.");
        var probs = new float[Data.Length];
        float loss = CrossEntropyKernels.Forward(probs, Data, labels, rows, k, labelSmoothing);
        var x = this;
        return Result([loss], [], [x], r => CrossEntropyKernels.Backward(x.GradBuffer, probs, labels, rows, k, r.Grad![0] / rows, labelSmoothing));
    }

    /// <summary>Cross-entropy with class <paramref name="weights"/> (empty: all 1) and an <paramref name="ignoreIndex"/> label
    /// that adds nothing (<c>F.cross_entropy(weight=…, ignore_index=…, label_smoothing=…)</c>, mean reduction).</summary>
    public Tensor CrossEntropy(int[] labels, float labelSmoothing, float[] weights, int ignoreIndex)
    {
        if (Shape.Length != 2) throw new ArgumentException($"CrossEntropy needs [B, K] logits, got {ShapeText()}.");
        int rows = Shape[0], k = Shape[1];
        if (labels.Length != rows) throw new ArgumentException($"CrossEntropy got {labels.Length} labels for {rows} rows.");
        var probs = new float[Data.Length];
        float loss = CrossEntropyKernels.Forward(probs, Data, labels, rows, k, labelSmoothing, weights, ignoreIndex);
        var x = this;
        return Result([loss], [], [x], r => CrossEntropyKernels.Backward(x.GradBuffer, probs, labels, rows, k, labelSmoothing, weights, ignoreIndex, r.Grad![0]));
    }

    /// <summary>Mean cosine embedding loss of these [B, D] embeddings and <paramref name="other"/>'s against labels 1
    /// (alike) or −1 (unlike) (<c>F.cosine_embedding_loss(x1, x2, y, margin)</c>).</summary>
    /// <exception cref="ArgumentException">When the shapes differ or are not [B, D], or the labels are not one per row.</exception>
    public Tensor CosineEmbedding(Tensor other, float[] labels, float margin = 0f)
    {
        ArgumentNullException.ThrowIfNull(other);
        ArgumentNullException.ThrowIfNull(labels);
        if (Shape.Length != 2 || !Shape.SequenceEqual(other.Shape)) throw new ArgumentException($"CosineEmbedding needs two [B, D] embeddings of one shape, got {ShapeText()} and {other.ShapeText()}.");
        int rows = Shape[0], dim = Shape[1];
        if (labels.Length != rows) throw new ArgumentException($"CosineEmbedding got {labels.Length} labels for {rows} rows.");
        float loss = CosineEmbeddingKernels.Forward(Data, other.Data, labels, rows, dim, margin);
        var (a, b) = (this, other);
        return Result([loss], [], [a, b], r => CosineEmbeddingKernels.Backward(a.GradBuffer, b.GradBuffer, a.Data, b.Data, labels, rows, dim, margin, r.Grad![0] / rows));
    }

    /// <summary>The sum along dimension <paramref name="dim"/> (counting the batch as 0; negative from the end), which is
    /// dropped unless <paramref name="keepDim"/> (<c>x.sum(dim, keepdim)</c>).</summary>
    /// <exception cref="ArgumentException">When the dimension is the batch or outside the shape.</exception>
    public Tensor Sum(int dim, bool keepDim = false) => Reduce("Sum", dim, keepDim, mean: false);

    /// <summary>The mean along dimension <paramref name="dim"/> (<c>x.mean(dim, keepdim)</c>; see <see cref="Sum"/>).</summary>
    /// <exception cref="ArgumentException">When the dimension is the batch or outside the shape.</exception>
    public Tensor Mean(int dim, bool keepDim = false) => Reduce("Mean", dim, keepDim, mean: true);

    private Tensor Reduce(string name, int dim, bool keepDim, bool mean)
    {
        int d = dim < 0 ? dim + Shape.Length : dim;
        if (d < 1 || d >= Shape.Length) throw new ArgumentException($"{name}: dimension {dim} is not one of {ShapeText()} after the batch.", nameof(dim));
        int n = Shape[d], inner = 1;
        for (int k = d + 1; k < Shape.Length; k++) inner *= Shape[k];
        int outer = Data.Length / (n * inner);
        var shape = keepDim ? Shape.Select((s, i) => i == d ? 1 : s).ToArray() : Shape.Where((_, i) => i != d).ToArray();
        var x = this;
        if (d == 1 && Mask is { } mask)
        {
            // Over the masked sequence: padding adds nothing (and does not count in a mean).
            var ys = new float[outer * inner];
            if (mean) SequenceKernels.MeanForward(ys, Data, mask, outer, n, inner); else SequenceKernels.SumForward(ys, Data, mask, outer, n, inner);
            return Result(ys, shape, [x], r =>
            {
                if (mean) SequenceKernels.MeanBackward(x.GradBuffer, r.Grad, mask, outer, n, inner);
                else SequenceKernels.SumBackward(x.GradBuffer, r.Grad, mask, outer, n, inner);
            });
        }
        float scale = mean ? 1f / n : 1f;
        var y = new float[outer * inner];
        ReduceKernels.Forward(y, Data, outer, n, inner, scale);
        return Result(y, shape, [x], r => ReduceKernels.Backward(x.GradBuffer, r.Grad, outer, n, inner, scale));
    }

    /// <summary>One-hot rows of these class indices or token ids (floats holding integers, <c>F.one_hot(x, classes)</c>):
    /// shape [..Shape, classes], no gradient. In a loss method on class indices, <c>labels.OneHot(K)</c> turns the labels
    /// into targets shaped like the logits.</summary>
    /// <exception cref="ArgumentException">When a value is not an integer in [0, classes).</exception>
    public Tensor OneHot(int classes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        if (Ids is { } tokens)
        {
            // Token ids (Tensor.FromIds): checked by the kernel.
            var rows = new float[tokens.Length * classes];
            EmbeddingKernels.OneHot(rows, tokens, tokens.Length, classes);
            return new Tensor(rows, [.. Shape, classes]) { Mask = Mask };
        }
        var ids = new int[Data.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            float v = Data[i];
            if (v != MathF.Floor(v) || v < 0 || v >= classes) throw new ArgumentException($"OneHot: value {v} at position {i} is not a class index in [0, {classes}).");
            ids[i] = (int)v;
        }
        var y = new float[ids.Length * classes];
        EmbeddingKernels.OneHot(y, ids, ids.Length, classes);
        return new Tensor(y, [.. Shape, classes]);
    }

    /// <summary>The mean of all elements, batch included (<c>torch.mean</c>): a scalar, e.g. the loss of an elementwise
    /// loss written by hand.</summary>
    public Tensor Mean()
    {
        int n = Data.Length;
        double sum = 0;
        foreach (float v in Data) sum += v;
        var x = this;
        return Result([(float)(sum / n)], [], [x], r => { var g = x.GradBuffer; float d = r.Grad![0] / n; for (int i = 0; i < n; i++) g[i] += d; });
    }

    /// <summary>Negative log-likelihood with class <paramref name="weights"/> (empty: all 1) and an <paramref name="ignoreIndex"/>
    /// label that adds nothing (<c>F.nll_loss(weight=…, ignore_index=…)</c>, PyTorch's weighted mean).</summary>
    public Tensor Nll(int[] labels, float[] weights, int ignoreIndex)
    {
        if (Shape.Length != 2) throw new ArgumentException($"Nll needs [B, K] log-probabilities, got {ShapeText()}.");
        int rows = Shape[0], k = Shape[1];
        if (labels.Length != rows) throw new ArgumentException($"Nll got {labels.Length} labels for {rows} rows.");
        float loss = NllKernels.Forward(Data, labels, rows, k, weights, ignoreIndex);
        var x = this;
        return Result([loss], [], [x], r => NllKernels.Backward(x.GradBuffer, labels, rows, k, weights, ignoreIndex, r.Grad![0]));
    }

    /// <summary>Mean negative log-likelihood of [B, K] log-probabilities against class indices (<c>F.nll_loss</c>).</summary>
    public Tensor Nll(int[] labels)
    {
        if (Shape.Length != 2) throw new ArgumentException($"Nll needs [B, K] log-probabilities, got {ShapeText()}.");
        int rows = Shape[0], k = Shape[1];
        if (labels.Length != rows) throw new ArgumentException($"Nll got {labels.Length} labels for {rows} rows.");
        float loss = NllKernels.Forward(Data, labels, rows, k);
        var x = this;
        return Result([loss], [], [x], r => NllKernels.Backward(x.GradBuffer, labels, rows, k, r.Grad![0] / rows));
    }

    /// <summary>KL divergence of target probabilities from these log-probabilities (<c>F.kl_div(x, target)</c>,
    /// log_target=False): 'mean' over the elements as PyTorch's default, or with <paramref name="batchMean"/> per sample.</summary>
    public Tensor KlDiv(Tensor target, bool batchMean = false)
    {
        if (target.Data.Length != Data.Length) throw new ArgumentException($"KlDiv: log-probabilities {ShapeText()} vs target {target.ShapeText()}.");
        int n = Data.Length;
        float divisor = batchMean ? Shape[0] : n;
        float loss = KlDivKernels.Forward(Data, target.Data, n, divisor);
        var x = this;
        return Result([loss], [], [x], r => KlDivKernels.Backward(x.GradBuffer, target.Data, n, r.Grad![0] / divisor));
    }

    /// <summary>Mean squared error against a target of the same shape.</summary>
    public Tensor Mse(Tensor target)
    {
        if (target.Data.Length != Data.Length) throw new ArgumentException($"Mse: prediction {ShapeText()} vs target {target.ShapeText()}.");
        float loss = MseKernels.Forward(Data, target.Data, Data.Length);
        var x = this;
        return Result([loss], [], [x], r => MseKernels.Backward(x.GradBuffer, x.Data, target.Data, x.Data.Length, r.Grad![0] / x.Data.Length));
    }

    /// <summary>Mean absolute error against a target of the same size (<c>F.l1_loss</c>).</summary>
    public Tensor L1(Tensor target) => ElementwiseLoss(target, "L1", (p, t, n) => L1Kernels.Forward(p, t, n), (d, p, t, n, s) => L1Kernels.Backward(d, p, t, n, s));

    /// <summary>Smooth L1 loss against a target of the same size (<c>F.smooth_l1_loss</c> with <paramref name="beta"/>).</summary>
    public Tensor SmoothL1(Tensor target, double beta = 1.0)
    {
        float b = (float)beta;
        if (!(b > 0)) throw new ArgumentOutOfRangeException(nameof(beta), beta, "SmoothL1: beta must be positive.");
        return ElementwiseLoss(target, "SmoothL1", (p, t, n) => SmoothL1Kernels.Forward(p, t, n, b), (d, p, t, n, s) => SmoothL1Kernels.Backward(d, p, t, n, s, b));
    }

    /// <summary>Binary cross-entropy of these logits against targets in [0, 1] of the same size (<c>F.binary_cross_entropy_with_logits</c>).</summary>
    public Tensor BceWithLogits(Tensor target) =>
        ElementwiseLoss(target, "BceWithLogits", (p, t, n) => BceWithLogitsKernels.Forward(p, t, n), (d, p, t, n, s) => BceWithLogitsKernels.Backward(d, p, t, n, s));

    private delegate float LossForward(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n);
    private delegate void LossBackward(Span<float> dpred, ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float scale);

    private Tensor ElementwiseLoss(Tensor target, string name, LossForward forward, LossBackward backward)
    {
        if (target.Data.Length != Data.Length) throw new ArgumentException($"{name}: prediction {ShapeText()} vs target {target.ShapeText()}.");
        float loss = forward(Data, target.Data, Data.Length);
        var x = this;
        return Result([loss], [], [x], r => backward(x.GradBuffer, x.Data, target.Data, x.Data.Length, r.Grad![0] / x.Data.Length));
    }

    /// <summary>
    /// Back-propagates from this scalar: walks the tape in reverse topological order, accumulating into every
    /// tensor's <see cref="Grad"/> and the layers' <see cref="ParameterStore"/> gradients.
    /// </summary>
    /// <exception cref="InvalidOperationException">When this is not a single-element tensor.</exception>
    public void Backward()
    {
        if (Data.Length != 1) throw new InvalidOperationException($"Backward needs a scalar loss, got shape {ShapeText()}.");
        var order = new List<Tensor>();
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Node, bool Expanded)>();
        stack.Push((this, false));
        while (stack.Count > 0)
        {
            var (node, expanded) = stack.Pop();
            if (expanded) { order.Add(node); continue; }
            if (!seen.Add(node)) continue;
            stack.Push((node, true));
            foreach (var p in node._parents) if (!seen.Contains(p)) stack.Push((p, false));
        }
        GradBuffer[0] += 1f;
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var node = order[i];
            if (node._backward is not null && node.Grad is not null) node._backward(node);
        }
    }
}
