using Compiled.Nets.Kernels;

namespace Compiled.Nets;

// Layer handles: what a network's partial layer properties return. Each binds to named tensors of a ParameterStore
// (weights live there, not here) and runs eagerly for the reference path, accumulating parameter gradients into the
// store so eager and compiled gradients are compared in the same place.

/// <summary>2-D convolution handle (<c>weight</c> [O, C/groups, KH, KW], optional <c>bias</c> [O]).</summary>
public sealed class Conv2d : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _in, _out, _kh, _kw, _sh, _sw, _ph, _pw, _dil, _groups;

    /// <summary>Binds to <c>{name}.weight</c> and, when <paramref name="bias"/>, <c>{name}.bias</c> (square kernel, one group).</summary>
    public Conv2d(ParameterStore store, string name, int inChannels, int outChannels, int kernel, int stride, int padding, int dilation, bool bias)
        : this(store, name, inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), dilation, 1, bias) { }

    /// <summary>As nn.Conv2d with (height, width) pairs and <paramref name="groups"/> (depthwise when it equals the channels).</summary>
    /// <exception cref="ArgumentException">When groups does not divide both channel counts.</exception>
    public Conv2d(ParameterStore store, string name, int inChannels, int outChannels, (int Height, int Width) kernel, (int Height, int Width) stride,
        (int Height, int Width) padding, int dilation, int groups, bool bias)
    {
        if (groups <= 0 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d({inChannels}, {outChannels}): {groups} groups must divide both channel counts.");
        _store = store; _in = inChannels; _out = outChannels; (_kh, _kw) = kernel; (_sh, _sw) = stride; (_ph, _pw) = padding; _dil = dilation; _groups = groups;
        Weight = store[name + ".weight"];
        Bias = bias ? store[name + ".bias"] : null;
    }

    /// <summary>The weight tensor's entry.</summary>
    public ParameterInfo Weight { get; }
    /// <summary>The bias tensor's entry, if any.</summary>
    public ParameterInfo? Bias { get; }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 4 || x.Shape[1] != _in)
            throw new ArgumentException($"Conv2d({_in}, {_out}) expects [B, {_in}, H, W], got {x.ShapeText()}.");
        // The geometry of one group for the whole batch; the grouped kernels run each group of each sample.
        var g = new Conv2dGeometry(x.Shape[0], _in / _groups, x.Shape[2], x.Shape[3], _out / _groups, _kh, _kw, _sh, _sw, _ph, _pw, _dil, _dil);
        int batch = g.Batch, oh = g.OutHeight, ow = g.OutWidth, plane = oh * ow, groups = _groups;
        var y = new float[batch * _out * plane];
        var scratch = new float[Conv2dKernels.GroupedScratchSize(g, groups)];
        Conv2dKernels.ForwardGrouped(y, x.Data, _store.ReadValue(Weight), default, g, groups, scratch);
        if (Bias is not null)
        {
            var b = _store.ReadValue(Bias);
            for (int i = 0; i < y.Length; i++) y[i] += b[i / plane % _out];
        }
        var store = _store; var w = Weight; var bias = Bias; int outChannels = _out;
        return Tensor.Result(y, [batch, _out, oh, ow], [x], r =>
        {
            var dy = r.Grad!;
            Conv2dKernels.BackwardGrouped(x.GradBuffer, w.RequiresGrad ? store.Gradient(w) : default, dy, x.Data, store.ReadValue(w), g, groups, scratch);
            if (bias is { RequiresGrad: true })
            {
                var db = store.Gradient(bias);
                for (int i = 0; i < dy.Length; i++) db[i / plane % outChannels] += dy[i];
            }
        });
    }
}

/// <summary>Transposed 2-D convolution handle (nn.ConvTranspose2d: <c>weight</c> [C, O, K, K], optional <c>bias</c> [O]).</summary>
public sealed class ConvTranspose2d : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _in, _out, _k, _s, _p, _op, _dil;

    /// <summary>Binds to <c>{name}.weight</c> and, when <paramref name="bias"/>, <c>{name}.bias</c>.</summary>
    /// <exception cref="ArgumentException">When outputPadding is not below the stride.</exception>
    public ConvTranspose2d(ParameterStore store, string name, int inChannels, int outChannels, int kernel, int stride, int padding, int outputPadding, int dilation, bool bias)
    {
        if (outputPadding < 0 || outputPadding >= stride) throw new ArgumentException($"ConvTranspose2d: outputPadding {outputPadding} must be in [0, stride {stride}).");
        _store = store; _in = inChannels; _out = outChannels; _k = kernel; _s = stride; _p = padding; _op = outputPadding; _dil = dilation;
        Weight = store[name + ".weight"];
        Bias = bias ? store[name + ".bias"] : null;
    }

    /// <summary>The weight tensor's entry.</summary>
    public ParameterInfo Weight { get; }
    /// <summary>The bias tensor's entry, if any.</summary>
    public ParameterInfo? Bias { get; }

    /// <summary>The convolution whose adjoint the layer is, for <paramref name="batch"/> inputs of [C, H, W]: from the
    /// output's shape [O, H', W'] back to [C, H, W].</summary>
    public static Conv2dGeometry Geometry(int batch, int inChannels, int outChannels, int height, int width, int kernel, int stride, int padding, int outputPadding, int dilation)
    {
        int span = dilation * (kernel - 1);
        int oh = (height - 1) * stride - 2 * padding + span + outputPadding + 1, ow = (width - 1) * stride - 2 * padding + span + outputPadding + 1;
        return new Conv2dGeometry(batch, outChannels, oh, ow, inChannels, kernel, kernel, stride, stride, padding, padding, dilation, dilation);
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 4 || x.Shape[1] != _in)
            throw new ArgumentException($"ConvTranspose2d({_in}, {_out}) expects [B, {_in}, H, W], got {x.ShapeText()}.");
        var g = Geometry(x.Shape[0], _in, _out, x.Shape[2], x.Shape[3], _k, _s, _p, _op, _dil);
        var y = new float[g.Batch * g.InSize];
        var scratch = new float[ConvTranspose2dKernels.ScratchSize(g)];
        var store = _store; var w = Weight; var bias = Bias;
        ConvTranspose2dKernels.Forward(y, x.Data, store.ReadValue(w), bias is null ? default : store.ReadValue(bias), g, scratch);
        int plane = g.InHeight * g.InWidth, outChannels = _out;
        return Tensor.Result(y, [g.Batch, _out, g.InHeight, g.InWidth], [x], r =>
        {
            var dy = r.Grad!;
            ConvTranspose2dKernels.Backward(x.GradBuffer, w.RequiresGrad ? store.Gradient(w) : default, dy, x.Data, store.ReadValue(w), g, scratch, new float[x.Data.Length], accumulateDx: true);
            if (bias is { RequiresGrad: true })
            {
                var db = store.Gradient(bias);
                for (int i = 0; i < dy.Length; i++) db[i / plane % outChannels] += dy[i];
            }
        });
    }
}

/// <summary>1-D convolution handle (nn.Conv1d: <c>weight</c> [O, C/groups, K], optional <c>bias</c> [O]) over [B, C, L];
/// it runs the 2-D kernels with a height of 1.</summary>
public sealed class Conv1d : ILayer
{
    private readonly Conv2d _conv;
    private readonly int _in;

    /// <summary>Binds to <c>{name}.weight</c> and, when <paramref name="bias"/>, <c>{name}.bias</c>.</summary>
    /// <exception cref="ArgumentException">When groups does not divide both channel counts.</exception>
    public Conv1d(ParameterStore store, string name, int inChannels, int outChannels, int kernel, int stride, int padding, int dilation, int groups, bool bias)
    {
        _in = inChannels;
        _conv = new Conv2d(store, name, inChannels, outChannels, (1, kernel), (1, stride), (0, padding), dilation, groups, bias);
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 3 || x.Shape[1] != _in) throw new ArgumentException($"Conv1d expects [B, {_in}, L], got {x.ShapeText()}.");
        var y = _conv.Forward(x.Unflatten(1, _in, 1)); // [B, C, 1, L] → [B, O, 1, L']
        return y.Reshape(y.Shape[0], y.Shape[1], y.Shape[3]);
    }
}

/// <summary>Fully connected handle (<c>weight</c> [O, I], optional <c>bias</c> [O]); applies to [..., I].</summary>
public sealed class Linear : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _in, _out;

    /// <summary>Binds to <c>{name}.weight</c> and, when <paramref name="bias"/>, <c>{name}.bias</c>.</summary>
    public Linear(ParameterStore store, string name, int inFeatures, int outFeatures, bool bias)
    {
        _store = store; _in = inFeatures; _out = outFeatures;
        Weight = store[name + ".weight"];
        Bias = bias ? store[name + ".bias"] : null;
    }

    /// <summary>The weight tensor's entry.</summary>
    public ParameterInfo Weight { get; }
    /// <summary>The bias tensor's entry, if any.</summary>
    public ParameterInfo? Bias { get; }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape[^1] != _in) throw new ArgumentException($"Linear({_in}, {_out}) expects [..., {_in}], got {x.ShapeText()}.");
        int rows = x.Data.Length / _in;
        var y = new float[rows * _out];
        if (Bias is null) LinearKernels.Forward(y, x.Data, _store.ReadValue(Weight), rows, _in, _out);
        else LinearKernels.ForwardBias(y, x.Data, _store.ReadValue(Weight), _store.ReadValue(Bias), rows, _in, _out);
        var shape = (int[])x.Shape.Clone();
        shape[^1] = _out;
        var store = _store; var w = Weight; var bias = Bias; int o = _out, n = _in;
        return Tensor.Result(y, shape, [x], r =>
        {
            var dy = r.Grad!;
            LinearKernels.Backward(x.GradBuffer, w.RequiresGrad ? store.Gradient(w) : default, dy, x.Data, store.ReadValue(w), rows, n, o);
            if (bias is { RequiresGrad: true }) LinearKernels.BiasBackward(store.Gradient(bias), dy, rows, o);
        });
    }
}

/// <summary>Batch normalisation handle over [B, C, H, W] (or [B, C]).</summary>
public sealed class BatchNorm2d : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _features;
    private readonly float _eps, _momentum;
    private readonly ParameterInfo _weight, _bias, _mean, _var, _tracked;

    /// <summary>Binds to <c>{name}.weight/bias/running_mean/running_var/num_batches_tracked</c>.</summary>
    public BatchNorm2d(ParameterStore store, string name, int features, float eps, float momentum)
    {
        _store = store; _features = features; _eps = eps; _momentum = momentum;
        _weight = store[name + ".weight"]; _bias = store[name + ".bias"];
        _mean = store[name + ".running_mean"]; _var = store[name + ".running_var"]; _tracked = store[name + ".num_batches_tracked"];
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length < 2 || x.Shape[1] != _features) throw new ArgumentException($"BatchNorm2d({_features}) expects [B, {_features}, ...], got {x.ShapeText()}.");
        int batch = x.Shape[0], spatial = x.Data.Length / (batch * _features);
        var y = new float[x.Data.Length];
        var s = _store;
        if (!Eager.IsTraining)
        {
            BatchNormKernels.ForwardInference(y, x.Data, s.ReadValue(_weight), s.ReadValue(_bias), s.Value(_mean), s.Value(_var), batch, _features, spatial, _eps);
            return Tensor.Result(y, x.Shape, [x], r => { throw new InvalidOperationException("BatchNorm2d backward in evaluation mode is not supported; use Eager.Training()."); });
        }
        var mean = new float[_features]; var inv = new float[_features];
        BatchNormKernels.ForwardTraining(y, mean, inv, s.Value(_mean), s.Value(_var), x.Data, s.ReadValue(_weight), s.ReadValue(_bias), batch, _features, spatial, _eps, _momentum);
        s.Value(_tracked)[0] += 1;
        var w = _weight; var b = _bias; int c = _features;
        return Tensor.Result(y, x.Shape, [x], r => BatchNormKernels.Backward(x.GradBuffer, w.RequiresGrad ? s.Gradient(w) : default, b.RequiresGrad ? s.Gradient(b) : default,
            r.Grad, x.Data, mean, inv, s.ReadValue(w), batch, c, spatial));
    }
}

/// <summary>Batch normalisation over the channels of [B, C] or [B, C, L] (<c>nn.BatchNorm1d</c>): BatchNorm2d's arithmetic.</summary>
public sealed class BatchNorm1d : ILayer
{
    private readonly BatchNorm2d _norm;
    private readonly int _features;

    /// <summary>Binds to <c>{name}.weight/bias/running_mean/running_var/num_batches_tracked</c>.</summary>
    public BatchNorm1d(ParameterStore store, string name, int features, float eps, float momentum)
    {
        _norm = new BatchNorm2d(store, name, features, eps, momentum);
        _features = features;
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length is not (2 or 3) || x.Shape[1] != _features) throw new ArgumentException($"BatchNorm1d({_features}) expects [B, {_features}] or [B, {_features}, L], got {x.ShapeText()}.");
        return _norm.Forward(x);
    }
}

/// <summary>Layer normalisation handle over the last dimension.</summary>
public sealed class LayerNorm : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _features;
    private readonly float _eps;
    private readonly ParameterInfo _weight, _bias;

    /// <summary>Binds to <c>{name}.weight</c> and <c>{name}.bias</c>.</summary>
    public LayerNorm(ParameterStore store, string name, int features, float eps)
    {
        _store = store; _features = features; _eps = eps;
        _weight = store[name + ".weight"]; _bias = store[name + ".bias"];
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape[^1] != _features) throw new ArgumentException($"LayerNorm({_features}) expects [..., {_features}], got {x.ShapeText()}.");
        int rows = x.Data.Length / _features;
        var y = new float[x.Data.Length]; var mean = new float[rows]; var rstd = new float[rows];
        var s = _store; var w = _weight; var b = _bias; int f = _features;
        LayerNormKernels.Forward(y, mean, rstd, x.Data, s.ReadValue(w), s.ReadValue(b), rows, f, _eps);
        return Tensor.Result(y, x.Shape, [x], r => LayerNormKernels.Backward(x.GradBuffer, w.RequiresGrad ? s.Gradient(w) : default, b.RequiresGrad ? s.Gradient(b) : default,
            r.Grad, x.Data, mean, rstd, s.ReadValue(w), rows, f));
    }
}

/// <summary>Upsampling by an integer factor (<c>nn.Upsample</c>) over [B, C, H, W].</summary>
public sealed class Upsample(int scaleFactor, UpsampleMode mode) : ILayer
{
    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 4 || scaleFactor <= 0) throw new ArgumentException($"Upsample({scaleFactor}) expects [B, C, H, W] and a positive factor, got {x.ShapeText()}.");
        int planes = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3], s = scaleFactor;
        var y = new float[planes * h * w * s * s];
        bool bilinear = mode == UpsampleMode.Bilinear;
        if (bilinear) UpsampleKernels.BilinearForward(y, x.Data, planes, h, w, s); else UpsampleKernels.NearestForward(y, x.Data, planes, h, w, s);
        return Tensor.Result(y, [x.Shape[0], x.Shape[1], h * s, w * s], [x], r =>
        {
            if (bilinear) UpsampleKernels.BilinearBackward(x.GradBuffer, r.Grad, planes, h, w, s); else UpsampleKernels.NearestBackward(x.GradBuffer, r.Grad, planes, h, w, s);
        });
    }
}

/// <summary>Group normalisation handle (<c>nn.GroupNorm</c>) over [B, C, …]: <c>weight</c> and <c>bias</c> [C].</summary>
public sealed class GroupNorm : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _groups, _channels;
    private readonly float _eps;
    private readonly ParameterInfo _weight, _bias;

    /// <summary>Binds to <c>{name}.weight</c> and <c>{name}.bias</c>.</summary>
    /// <exception cref="ArgumentException">When the groups do not divide the channels.</exception>
    public GroupNorm(ParameterStore store, string name, int groups, int channels, float eps)
    {
        if (groups <= 0 || channels % groups != 0) throw new ArgumentException($"GroupNorm: {groups} groups must divide {channels} channels.");
        _store = store; _groups = groups; _channels = channels; _eps = eps;
        _weight = store[name + ".weight"]; _bias = store[name + ".bias"];
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length < 2 || x.Shape[1] != _channels) throw new ArgumentException($"GroupNorm({_groups}, {_channels}) expects [B, {_channels}, …], got {x.ShapeText()}.");
        int batch = x.Shape[0], positions = x.Data.Length / (batch * _channels), groups = _groups, channels = _channels;
        var y = new float[x.Data.Length];
        var mean = new float[batch * groups]; var rstd = new float[batch * groups];
        var s = _store; var w = _weight; var b = _bias;
        GroupNormKernels.Forward(y, mean, rstd, x.Data, s.ReadValue(w), s.ReadValue(b), batch, channels, positions, groups, _eps);
        return Tensor.Result(y, x.Shape, [x], r => GroupNormKernels.Backward(x.GradBuffer, w.RequiresGrad ? s.Gradient(w) : default, b.RequiresGrad ? s.Gradient(b) : default,
            r.Grad, x.Data, mean, rstd, s.ReadValue(w), batch, channels, positions, groups));
    }
}

/// <summary>
/// Multi-head self-attention handle (HF <c>BertSelfAttention</c>): binds <c>{name}.query</c>, <c>.key</c>, <c>.value</c>
/// (.weight [E, E], .bias [E]). Eager forward on [B, T, E] honours the tensor's <see cref="Tensor.Mask"/>.
/// </summary>
public sealed class SelfAttention : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _embed, _heads;
    private readonly float _dropout;
    private readonly ParameterInfo[] _w, _b;

    /// <summary>Binds to the query/key/value projections under <paramref name="name"/>.</summary>
    public SelfAttention(ParameterStore store, string name, int embed, int heads, float dropout)
    {
        if (heads <= 0 || embed % heads != 0) throw new ArgumentException($"SelfAttention: {heads} heads do not divide {embed} features.");
        _store = store; _embed = embed; _heads = heads; _dropout = dropout;
        string[] parts = ["query", "key", "value"];
        _w = parts.Select(p => store[$"{name}.{p}.weight"]).ToArray();
        _b = parts.Select(p => store[$"{name}.{p}.bias"]).ToArray();
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 3 || x.Shape[2] != _embed) throw new ArgumentException($"SelfAttention({_embed}, {_heads}) expects [B, T, {_embed}], got {x.ShapeText()}.");
        int batch = x.Shape[0], seq = x.Shape[1], rows = batch * seq, e = _embed, d = e / _heads, heads = _heads;
        var s = _store;
        var proj = new float[3][];
        for (int i = 0; i < 3; i++)
        {
            proj[i] = new float[rows * e];
            LinearKernels.ForwardBias(proj[i], x.Data, s.ReadValue(_w[i]), s.ReadValue(_b[i]), rows, e, e);
        }
        var ctx = new float[rows * e]; var probs = new float[batch * heads * seq * seq];
        float[] drop = [];
        if (Eager.IsTraining && _dropout > 0) { drop = new float[probs.Length]; DropoutKernels.FillMask(drop, _dropout, Eager.Rng); }
        var mask = x.Mask ?? [];
        var scratch = new float[AttentionKernels.ScratchSize(seq)];
        AttentionKernels.Forward(ctx, probs, proj[0], proj[1], proj[2], mask, drop, batch, seq, heads, d, scratch);
        var w = _w; var b = _b;
        return Tensor.Result(ctx, x.Shape, [x], r =>
        {
            var grads = new[] { new float[rows * e], new float[rows * e], new float[rows * e] };
            AttentionKernels.Backward(grads[0], grads[1], grads[2], r.Grad, probs, proj[0], proj[1], proj[2], drop, batch, seq, heads, d, scratch);
            for (int i = 0; i < 3; i++)
            {
                LinearKernels.Backward(x.GradBuffer, w[i].RequiresGrad ? s.Gradient(w[i]) : default, grads[i], x.Data, s.ReadValue(w[i]), rows, e, e);
                LinearKernels.BiasBackward(b[i].RequiresGrad ? s.Gradient(b[i]) : default, grads[i], rows, e);
            }
        });
    }
}

/// <summary>Embedding table handle: ids [...] → [..., D].</summary>
public sealed class Embedding : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _count, _dim, _padding = -1;
    private readonly ParameterInfo _weight;

    /// <summary>Binds to <c>{name}.weight</c> [count, dim].</summary>
    public Embedding(ParameterStore store, string name, int count, int dim)
    {
        _store = store; _count = count; _dim = dim; _weight = store[name + ".weight"];
    }

    /// <summary>As above, with the row <paramref name="paddingIdx"/> (negative: from the end) getting no gradient.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When the row is outside the table.</exception>
    public Embedding(ParameterStore store, string name, int count, int dim, int paddingIdx) : this(store, name, count, dim)
    {
        if (paddingIdx < -count || paddingIdx >= count) throw new ArgumentOutOfRangeException(nameof(paddingIdx), paddingIdx, $"Embedding: padding_idx must be in [-{count}, {count}).");
        _padding = paddingIdx < 0 ? paddingIdx + count : paddingIdx;
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        var ids = x.Ids ?? throw new ArgumentException($"Embedding expects a tensor of token ids (Tensor.FromIds), got floats of shape {x.ShapeText()}.");
        var y = new float[ids.Length * _dim];
        var s = _store; var w = _weight; int d = _dim;
        EmbeddingKernels.Forward(y, ids, s.ReadValue(w), ids.Length, _count, d);
        int padding = _padding;
        return Tensor.Result(y, [.. x.Shape, d], [x], r => { if (w.RequiresGrad) EmbeddingKernels.Backward(s.Gradient(w), r.Grad, ids, ids.Length, d, padding); });
    }
}

/// <summary>Learned position embeddings added to [B, T, D] (<c>{name}.weight</c> [count, D]).</summary>
public sealed class PositionEmbedding : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _count, _dim;
    private readonly ParameterInfo _weight;

    /// <summary>Binds to <c>{name}.weight</c>.</summary>
    public PositionEmbedding(ParameterStore store, string name, int count, int dim)
    {
        _store = store; _count = count; _dim = dim; _weight = store[name + ".weight"];
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 3 || x.Shape[2] != _dim || x.Shape[1] > _count)
            throw new ArgumentException($"PositionEmbedding({_count}, {_dim}) expects [B, T ≤ {_count}, {_dim}], got {x.ShapeText()}.");
        int batch = x.Shape[0], seq = x.Shape[1], d = _dim;
        var y = new float[x.Data.Length];
        var s = _store; var w = _weight;
        EmbeddingKernels.AddPositions(y, x.Data, s.ReadValue(w), batch, seq, d);
        return Tensor.Result(y, x.Shape, [x], r =>
        {
            Elementwise.AddInPlace(x.GradBuffer, r.Grad);
            if (w.RequiresGrad) EmbeddingKernels.AddPositionsBackward(s.Gradient(w), r.Grad, batch, seq, d);
        });
    }
}

/// <summary>Token type embeddings for single-segment input: adds row 0 of <c>{name}.weight</c> [count, D] everywhere.</summary>
public sealed class TokenTypeEmbedding : ILayer
{
    private readonly ParameterStore _store;
    private readonly int _dim;
    private readonly ParameterInfo _weight;

    /// <summary>Binds to <c>{name}.weight</c>.</summary>
    public TokenTypeEmbedding(ParameterStore store, string name, int count, int dim)
    {
        _store = store; _dim = dim; _weight = store[name + ".weight"];
    }

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape[^1] != _dim) throw new ArgumentException($"TokenTypeEmbedding(…, {_dim}) expects [..., {_dim}], got {x.ShapeText()}.");
        int rows = x.Data.Length / _dim, d = _dim;
        var y = new float[x.Data.Length];
        var s = _store; var w = _weight;
        Elementwise.AddToEachRow(y, x.Data, s.ReadValue(w), rows, d);
        return Tensor.Result(y, x.Shape, [x], r =>
        {
            Elementwise.AddInPlace(x.GradBuffer, r.Grad);
            if (w.RequiresGrad) LinearKernels.BiasBackward(s.Gradient(w)[..d], r.Grad, rows, d);
        });
    }
}

/// <summary>2-D max pooling (stride defaults to the kernel size).</summary>
public sealed class MaxPool2d(int kernel, int stride, int padding) : ILayer
{
    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        var g = PoolGeometry.Of(x, "MaxPool2d", kernel, stride, padding);
        var y = new float[g.Batch * g.OutSize]; var arg = new int[y.Length];
        PoolingKernels.MaxPool2dForward(y, arg, x.Data, g);
        return Tensor.Result(y, [g.Batch, g.Channels, g.OutHeight, g.OutWidth], [x], r => PoolingKernels.MaxPool2dBackward(x.GradBuffer, r.Grad, arg, g));
    }
}

/// <summary>2-D average pooling (stride defaults to the kernel size; padding counted).</summary>
public sealed class AvgPool2d(int kernel, int stride, int padding) : ILayer
{
    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        var g = PoolGeometry.Of(x, "AvgPool2d", kernel, stride, padding);
        var y = new float[g.Batch * g.OutSize];
        PoolingKernels.AvgPool2dForward(y, x.Data, g);
        return Tensor.Result(y, [g.Batch, g.Channels, g.OutHeight, g.OutWidth], [x], r => PoolingKernels.AvgPool2dBackward(x.GradBuffer, r.Grad, g));
    }
}

/// <summary>Adaptive average pooling to <paramref name="outputSize"/>×<paramref name="outputSize"/> (<c>nn.AdaptiveAvgPool2d</c>; 1 is global average pooling).</summary>
public sealed class AdaptiveAvgPool2d(int outputSize) : ILayer
{
    /// <summary>The output's height and width.</summary>
    public int OutputSize { get; } = outputSize > 0 ? outputSize : throw new ArgumentOutOfRangeException(nameof(outputSize), outputSize, "AdaptiveAvgPool2d: the output size must be positive.");

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length != 4) throw new ArgumentException($"AdaptiveAvgPool2d expects [B, C, H, W], got {x.ShapeText()}.");
        int planes = x.Shape[0] * x.Shape[1], h = x.Shape[2], w = x.Shape[3], n = OutputSize;
        var y = new float[planes * n * n];
        PoolingKernels.AdaptiveAvgPool2dForward(y, x.Data, planes, h, w, n, n);
        return Tensor.Result(y, [x.Shape[0], x.Shape[1], n, n], [x], r => PoolingKernels.AdaptiveAvgPool2dBackward(x.GradBuffer, r.Grad, planes, h, w, n, n));
    }
}

internal static class PoolGeometry
{
    public static Pool2dGeometry Of(Tensor x, string op, int kernel, int stride, int padding)
    {
        if (x.Shape.Length != 4) throw new ArgumentException($"{op} expects [B, C, H, W], got {x.ShapeText()}.");
        int s = stride == 0 ? kernel : stride;
        var g = new Pool2dGeometry(x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], kernel, kernel, s, s, padding, padding);
        if (g.OutHeight <= 0 || g.OutWidth <= 0) throw new ArgumentException($"{op}({kernel}) does not fit input {x.ShapeText()}.");
        return g;
    }
}

/// <summary>Dropout: active only inside <see cref="Eager.Training"/>.</summary>
public sealed class Dropout(double p) : ILayer
{
    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (!Eager.IsTraining || p == 0) return x;
        var mask = new float[x.Data.Length];
        DropoutKernels.FillMask(mask, (float)p, Eager.Rng);
        var y = new float[mask.Length];
        for (int i = 0; i < y.Length; i++) y[i] = x.Data[i] * mask[i];
        return Tensor.Result(y, x.Shape, [x], r => { var g = x.GradBuffer; for (int i = 0; i < g.Length; i++) g[i] += r.Grad![i] * mask[i]; });
    }
}

/// <summary>Channel dropout (<c>nn.Dropout2d</c>) over [B, C, …]: in training each sample's channel is zeroed with
/// probability p (the others scaled by 1/(1−p)); the identity in evaluation.</summary>
public sealed class Dropout2d(double p) : ILayer
{
    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        if (x.Shape.Length < 3) throw new ArgumentException($"Dropout2d expects [B, C, …] with at least one dimension after the channels, got {x.ShapeText()}.");
        if (!Eager.IsTraining || p == 0) return x;
        var mask = new float[x.Data.Length];
        DropoutKernels.FillChannelMask(mask, (float)p, x.Data.Length / (x.Shape[0] * x.Shape[1]), Eager.Rng);
        var y = new float[mask.Length];
        for (int i = 0; i < y.Length; i++) y[i] = x.Data[i] * mask[i];
        return Tensor.Result(y, x.Shape, [x], r => { var g = x.GradBuffer; for (int i = 0; i < g.Length; i++) g[i] += r.Grad![i] * mask[i]; });
    }
}

/// <summary>ReLU as a layer.</summary>
public sealed class ReLU : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Relu(); }
/// <summary>GELU as a layer.</summary>
public sealed class GELU : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Gelu(); }
/// <summary>tanh as a layer.</summary>
public sealed class Tanh : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Tanh(); }
/// <summary>Sigmoid as a layer.</summary>
public sealed class Sigmoid : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Sigmoid(); }
/// <summary>Leaky ReLU as a layer.</summary>
public sealed class LeakyReLU(double negativeSlope = 0.01) : ILayer {
    /// <summary>The slope for negative inputs.</summary>
    public double NegativeSlope { get; } = negativeSlope;
    /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.LeakyRelu(NegativeSlope); }
/// <summary>SiLU (swish) as a layer.</summary>
public sealed class SiLU : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Silu(); }
/// <summary>ELU as a layer.</summary>
public sealed class ELU(double alpha = 1.0) : ILayer {
    /// <summary>The scale of the negative branch.</summary>
    public double Alpha { get; } = alpha;
    /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Elu(Alpha); }
/// <summary>Hard swish as a layer.</summary>
public sealed class Hardswish : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Hardswish(); }
/// <summary>Flatten as a layer.</summary>
public sealed class Flatten : ILayer { /// <inheritdoc/>
    public Tensor Forward(Tensor x) => x.Flatten(); }
