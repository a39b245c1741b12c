using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Training;

/// <summary>
/// Base of the optimizers: sweeps each trainable parameter of a <see cref="ParameterStore"/> (frozen ones are left
/// bit-identical). Weight decay applies to every parameter, as in <c>torch.optim</c>; <see cref="DecayPredicate"/>
/// narrows it, e.g. to <see cref="NoDecayForBiasAndNorm"/> (the Hugging Face Trainer's grouping for BERT).
/// </summary>
public abstract class Optimizer
{
    /// <summary>Creates an optimizer over every parameter of <paramref name="store"/>.</summary>
    protected Optimizer(ParameterStore store, float learningRate)
    {
        Store = store ?? throw new ArgumentNullException(nameof(store));
        LearningRate = learningRate;
    }

    /// <summary>
    /// A hyperparameter checked as <c>torch.optim</c> checks it: at least <paramref name="least"/> and below
    /// <paramref name="below"/> (NaN and infinity refused), so a beta of 1 or a negative decay fails here instead of
    /// turning every weight into NaN at the first step.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Outside the range, naming the parameter.</exception>
    protected static float Hyperparameter(float value, string name, float least = 0, float below = float.PositiveInfinity) =>
        value >= least && value < below ? value
        : throw new ArgumentOutOfRangeException(name, value, float.IsPositiveInfinity(below) ? $"{name} must be finite and at least {least}." : $"{name} must be in [{least}, {below}).");

    /// <summary>The parameters being optimised.</summary>
    public ParameterStore Store { get; }
    /// <summary>Current learning rate (schedules set it before each step).</summary>
    /// <exception cref="ArgumentOutOfRangeException">When set to a negative, NaN or infinite value: one such step would ruin every weight.</exception>
    public float LearningRate
    {
        get => _learningRate;
        set => _learningRate = float.IsFinite(value) && value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(LearningRate), value, "The learning rate must be finite and not negative (a schedule or option gave this value).");
    }
    private float _learningRate;
    /// <summary>Number of steps taken.</summary>
    public long StepCount { get; protected set; }
    /// <summary>Which parameters get weight decay; default: all of them, as <c>torch.optim</c> does.</summary>
    public Func<ParameterInfo, bool> DecayPredicate { get; set; } = static _ => true;

    /// <summary>
    /// Weight decay for weights and embeddings only, none for biases and LayerNorm/BatchNorm parameters: the
    /// parameter groups Hugging Face's Trainer builds (<c>no_decay = ["bias", "LayerNorm.weight"]</c>), used when
    /// fine-tuning BERT. <c>new AdamW(store, 2e-5f) { DecayPredicate = Optimizer.NoDecayForBiasAndNorm }</c>.
    /// </summary>
    public static readonly Func<ParameterInfo, bool> NoDecayForBiasAndNorm = static p => p.IsWeightOrEmbedding;

    /// <summary>Applies one update from the gradients in the store (a device optimizer: from the gradients on its device).</summary>
    public virtual void Step()
    {
        StepCount++;
        // Indexed, not foreach: the list's enumerator is boxed through IReadOnlyList, 32 bytes every step.
        var parameters = Store.Parameters;
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (!p.RequiresGrad) continue;
            Update(p, Store.Value(p), Store.Gradient(p));
        }
    }

    /// <summary>Updates one parameter.</summary>
    protected abstract void Update(ParameterInfo p, Span<float> value, Span<float> grad);

    /// <summary>
    /// Where this optimizer's parameters and gradients live: true for the host store's spans; false for an optimizer
    /// that steps a copy elsewhere (a GPU twin's), which the training loop then syncs through
    /// <see cref="ParametersToStore"/> and <see cref="ParametersFromStore"/>.
    /// </summary>
    public virtual bool StepsStore => true;

    /// <summary>Scales the trainable gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the
    /// norm before clipping (<see cref="GradientClipping.ClipByGlobalNorm"/> on the store; a device optimizer clips on its device).</summary>
    /// <exception cref="ArithmeticException">When a gradient is NaN or infinite.</exception>
    public virtual float ClipGradientNorm(float maxNorm) => GradientClipping.ClipByGlobalNorm(Store, maxNorm);

    /// <summary>Multiplies every gradient by <paramref name="scale"/> (the mean over accumulated micro-batches).</summary>
    public virtual void ScaleGradients(float scale) => TensorPrimitives.Multiply(Store.Gradients, scale, Store.Gradients);

    /// <summary>Makes <see cref="Store"/> hold the parameters (and buffers) being trained, before they are checked,
    /// copied or saved: nothing to do when <see cref="StepsStore"/>; a device optimizer copies them back from its device.</summary>
    public virtual void ParametersToStore() { }

    /// <summary>After <see cref="Store"/> changed on the host (a resumed checkpoint, the best weights restored): a
    /// device optimizer copies them to its device; nothing to do when <see cref="StepsStore"/>.</summary>
    public virtual void ParametersFromStore() { }

    /// <summary>Makes <see cref="Store"/>'s gradients those about to be stepped (data-parallel training averages them
    /// there): nothing to do when <see cref="StepsStore"/>; a device optimizer copies them back from its device.</summary>
    public virtual void GradientsToStore() { }

    /// <summary>After <see cref="Store"/>'s gradients changed on the host (averaged over the ranks): a device optimizer
    /// copies them to its device; nothing to do when <see cref="StepsStore"/>.</summary>
    public virtual void GradientsFromStore() { }

    /// <summary>Optimizer state (moments and step count) for checkpoints, by name.</summary>
    public virtual IEnumerable<(string Name, float[] Data)> ExportState()
    {
        yield return ("step", [StepCount]);
    }

    /// <summary>Restores state written by <see cref="ExportState"/>.</summary>
    /// <exception cref="InvalidDataException">When an entry is missing or has the wrong size.</exception>
    public virtual void ImportState(IReadOnlyDictionary<string, float[]> state)
    {
        StepCount = (long)Get(state, "step", 1)[0];
    }

    /// <summary>Looks a state entry up, checking its length.</summary>
    protected static float[] Get(IReadOnlyDictionary<string, float[]> state, string name, int length)
    {
        if (!state.TryGetValue(name, out var v)) throw new InvalidDataException($"Optimizer state '{name}' is missing.");
        if (v.Length != length) throw new InvalidDataException($"Optimizer state '{name}' has {v.Length} values, expected {length}.");
        return v;
    }

    /// <summary>A buffer shaped like the store's flat parameter memory (one per moment).</summary>
    protected float[] NewMoment()
    {
        var moment = new float[Store.ReadValues.Length];
        StateBytes += 4L * moment.Length;
        return moment;
    }

    /// <summary>The bytes of this optimizer's per-parameter state (its moments): what the generated
    /// OptimizerStateBytes predicts.</summary>
    public long StateBytes { get; private set; }
}

/// <summary>Stochastic gradient descent as <c>torch.optim.SGD</c>: momentum, dampening, Nesterov, coupled (L2) weight decay.</summary>
public sealed class Sgd : Optimizer
{
    private readonly float _momentum, _dampening, _weightDecay;
    private readonly bool _nesterov;
    private readonly float[]? _buf;
    private bool _started;

    /// <summary>Creates SGD.</summary>
    public Sgd(ParameterStore store, float lr, float momentum = 0, float dampening = 0, float weightDecay = 0, bool nesterov = false) : base(store, lr)
    {
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum requires momentum > 0 and zero dampening.");
        _momentum = Hyperparameter(momentum, nameof(momentum)); _dampening = Hyperparameter(dampening, nameof(dampening));
        _weightDecay = Hyperparameter(weightDecay, nameof(weightDecay)); _nesterov = nesterov;
        if (momentum != 0) _buf = NewMoment();
    }

    /// <inheritdoc/>
    protected override void Update(ParameterInfo p, Span<float> w, Span<float> g)
    {
        float wd = DecayPredicate(p) ? _weightDecay : 0;
        var buf = _buf is null ? default : _buf.AsSpan(p.Offset, p.Length);
        bool first = StepCount == 1 && !_started;
        for (int i = 0; i < w.Length; i++)
        {
            float d = g[i] + wd * w[i];
            if (_buf is not null)
            {
                buf[i] = first ? d : _momentum * buf[i] + (1 - _dampening) * d;
                d = _nesterov ? d + _momentum * buf[i] : buf[i];
            }
            w[i] -= LearningRate * d;
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Name, float[] Data)> ExportState()
    {
        foreach (var s in base.ExportState()) yield return s;
        if (_buf is not null) yield return ("momentum_buffer", _buf);
    }

    /// <inheritdoc/>
    public override void ImportState(IReadOnlyDictionary<string, float[]> state)
    {
        base.ImportState(state);
        if (_buf is not null) { Get(state, "momentum_buffer", _buf.Length).CopyTo(_buf, 0); _started = StepCount > 0; }
    }
}

/// <summary>
/// Adam (<c>torch.optim.Adam</c>, L2 weight decay added to the gradient) and, with <c>decoupled</c>, AdamW
/// (<c>torch.optim.AdamW</c>: w ← w − lr·λ·w before the Adam step). Bias correction as in PyTorch.
/// </summary>
public class Adam : Optimizer
{
    private readonly float _beta1, _beta2, _eps, _weightDecay;
    private readonly bool _decoupled;
    private readonly float[] _m, _v;

    /// <summary>Creates Adam.</summary>
    public Adam(ParameterStore store, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0)
        : this(store, lr, beta1, beta2, eps, weightDecay, decoupled: false) { }

    /// <summary>Creates Adam or AdamW.</summary>
    protected Adam(ParameterStore store, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled) : base(store, lr)
    {
        _beta1 = Hyperparameter(beta1, nameof(beta1), below: 1); _beta2 = Hyperparameter(beta2, nameof(beta2), below: 1);
        _eps = Hyperparameter(eps, nameof(eps)); _weightDecay = Hyperparameter(weightDecay, nameof(weightDecay)); _decoupled = decoupled;
        _m = NewMoment(); _v = NewMoment();
    }

    /// <inheritdoc/>
    protected override unsafe void Update(ParameterInfo p, Span<float> w, Span<float> g)
    {
        float wd = DecayPredicate(p) ? _weightDecay : 0;
        var m = _m.AsSpan(p.Offset, p.Length); var v = _v.AsSpan(p.Offset, p.Length);
        double bc1 = 1 - Math.Pow(_beta1, StepCount), bc2 = 1 - Math.Pow(_beta2, StepCount);
        fixed (float* pw = w) fixed (float* pg = g) fixed (float* pm = m) fixed (float* pv = v)
        {
            var a = new AdamArgs
            {
                W = pw, G = pg, M = pm, V = pv, Length = w.Length,
                Beta1 = _beta1, Beta2 = _beta2, Eps = _eps, StepSize = (float)(LearningRate / bc1), Bc2Sqrt = (float)Math.Sqrt(bc2),
                // AdamW multiplies by (1 − lr·wd) first (torch's p.mul_), folded into the same pass; Adam adds wd·w to g.
                Decay = _decoupled ? 1 - LearningRate * wd : 1f, CoupledWd = _decoupled ? 0f : wd,
            };
            // A big tensor (fc1's 3.2 M weights) is a memory-bound stream: both cores take 64 k-element blocks of it
            // as they finish the last (elementwise, so the result does not depend on which core ran which).
            if (w.Length >= 1 << 16) Kernels.HelperThread.ForBlocks(&AdamBlock, &a, w.Length, 1 << 16);
            else AdamRange(ref a, 0, w.Length);
        }
    }

    private unsafe struct AdamArgs
    {
        public float* W, G, M, V;
        public int Length;
        public float Beta1, Beta2, Eps, StepSize, Bc2Sqrt, Decay, CoupledWd;
    }

    private static unsafe void AdamBlock(void* state, int half, int begin, int end) => AdamRange(ref *(AdamArgs*)state, begin, end);

    private static unsafe void AdamRange(ref AdamArgs a, int start, int end)
    {
        int i = start;
        if (Vector512.IsHardwareAccelerated)
        {
            // Same arithmetic as the scalar loop below, sixteen lanes at a time.
            var b1 = Vector512.Create(a.Beta1); var b1c = Vector512.Create(1 - a.Beta1);
            var b2 = Vector512.Create(a.Beta2); var b2c = Vector512.Create(1 - a.Beta2);
            var step = Vector512.Create(a.StepSize); var bc = Vector512.Create(a.Bc2Sqrt); var eps = Vector512.Create(a.Eps);
            var decay = Vector512.Create(a.Decay); var wdv = Vector512.Create(a.CoupledWd);
            for (; i <= end - 16; i += 16)
            {
                var gi = Vector512.Load(a.G + i);
                var wi = Vector512.Load(a.W + i);
                gi += wdv * wi;
                wi *= decay;
                var mi = b1 * Vector512.Load(a.M + i) + b1c * gi;
                var vi = b2 * Vector512.Load(a.V + i) + b2c * gi * gi;
                Vector512.Store(mi, a.M + i); Vector512.Store(vi, a.V + i);
                Vector512.Store(wi - step * mi / (Vector512.Sqrt(vi) / bc + eps), a.W + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            // CPUs without AVX-512: the same, eight lanes at a time (the scalar loop alone made AdamW 13 ms of the
            // ConvNet's step there).
            var b1 = Vector256.Create(a.Beta1); var b1c = Vector256.Create(1 - a.Beta1);
            var b2 = Vector256.Create(a.Beta2); var b2c = Vector256.Create(1 - a.Beta2);
            var step = Vector256.Create(a.StepSize); var bc = Vector256.Create(a.Bc2Sqrt); var eps = Vector256.Create(a.Eps);
            var decay = Vector256.Create(a.Decay); var wdv = Vector256.Create(a.CoupledWd);
            for (; i <= end - 8; i += 8)
            {
                var gi = Vector256.Load(a.G + i);
                var wi = Vector256.Load(a.W + i);
                gi += wdv * wi;
                wi *= decay;
                var mi = b1 * Vector256.Load(a.M + i) + b1c * gi;
                var vi = b2 * Vector256.Load(a.V + i) + b2c * gi * gi;
                Vector256.Store(mi, a.M + i); Vector256.Store(vi, a.V + i);
                Vector256.Store(wi - step * mi / (Vector256.Sqrt(vi) / bc + eps), a.W + i);
            }
        }
        for (; i < end; i++)
        {
            float gi = a.G[i] + a.CoupledWd * a.W[i];
            float wi = a.W[i] * a.Decay;
            a.M[i] = a.Beta1 * a.M[i] + (1 - a.Beta1) * gi;
            a.V[i] = a.Beta2 * a.V[i] + (1 - a.Beta2) * gi * gi;
            a.W[i] = wi - a.StepSize * a.M[i] / (MathF.Sqrt(a.V[i]) / a.Bc2Sqrt + a.Eps);
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Name, float[] Data)> ExportState()
    {
        foreach (var s in base.ExportState()) yield return s;
        yield return ("exp_avg", _m);
        yield return ("exp_avg_sq", _v);
    }

    /// <inheritdoc/>
    public override void ImportState(IReadOnlyDictionary<string, float[]> state)
    {
        base.ImportState(state);
        Get(state, "exp_avg", _m.Length).CopyTo(_m, 0);
        Get(state, "exp_avg_sq", _v.Length).CopyTo(_v, 0);
    }
}

/// <summary>AdamW: Adam with decoupled weight decay (default 0.01, as <c>torch.optim.AdamW</c>).</summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates AdamW.</summary>
    public AdamW(ParameterStore store, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
        : base(store, lr, beta1, beta2, eps, weightDecay, decoupled: true) { }
}

/// <summary>Gradient clipping (<c>torch.nn.utils.clip_grad_norm_</c>).</summary>
public static class GradientClipping
{
    /// <summary>Scales all trainable gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    /// <exception cref="ArithmeticException">When a gradient is NaN or infinite, naming the first such parameter.</exception>
    public static float ClipByGlobalNorm(ParameterStore store, float maxNorm)
    {
        double sq = 0;
        foreach (var p in store.Parameters)
        {
            if (!p.RequiresGrad) continue;
            var g = store.Gradient(p);
            float n = TensorPrimitives.Norm(g);
            if (!float.IsFinite(n)) throw new ArithmeticException($"The gradient of '{p.Name}' is not finite (NaN or infinity).");
            sq += (double)n * n;
        }
        float norm = (float)Math.Sqrt(sq);
        if (norm > maxNorm)
        {
            float scale = maxNorm / (norm + 1e-6f);
            foreach (var p in store.Parameters)
                if (p.RequiresGrad) TensorPrimitives.Multiply(store.Gradient(p), scale, store.Gradient(p));
        }
        return norm;
    }
}
