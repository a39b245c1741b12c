using Compiled.Nets.Training;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>
/// An optimizer whose state lives on the device beside the parameters of a <see cref="DeviceNetwork"/>: one launch over
/// every trainable tensor (PyTorch's fused optimizers), frozen ones (RequiresGrad false on the host store) skipped, the
/// same arithmetic as the CPU optimizers of the same name. It is an <see cref="Optimizer"/> over the twin's host store, so the
/// <see cref="Trainer"/> trains a twin as it trains the CPU network: schedules set <see cref="Optimizer.LearningRate"/>,
/// clipping and the mean over accumulated micro-batches run on the device, and the weights come to the host store for
/// checks and checkpoints (the moments too, under the CPU optimizers' names, so checkpoints move between the two).
/// </summary>
public abstract class DeviceOptimizer : Optimizer, IDisposable
{
    private MemoryBuffer1D<float, Stride1D.Dense>? _normSquared;
    private readonly ParameterRuns _runs = new();
    private bool _disposed;

    protected DeviceOptimizer(DeviceNetwork network, float learningRate) : base((network ?? throw new ArgumentNullException(nameof(network))).HostParameters, learningRate)
    {
        Network = network;
    }

    /// <summary>The network whose parameters are stepped.</summary>
    public DeviceNetwork Network { get; }

    /// <inheritdoc/>
    public override bool StepsStore => false;

    /// <summary>Updates every trainable parameter from its gradient on the device: the built-in optimizers in one launch
    /// over all of them, a subclass's <see cref="Update(ParameterInfo, ArrayView{float}, ArrayView{float})"/> per tensor.</summary>
    public override void Step()
    {
        using var exclusive = Enter();
        StepCount++;
        if (UpdateAll(Trainable())) return;
        var parameters = Store.Parameters;
        for (int i = 0; i < parameters.Count; i++)
        {
            var p = parameters[i];
            if (!p.RequiresGrad || p.Length == 0) continue;
            Update(p, Network.ValueOf(p), Network.GradientOf(p));
        }
    }

    /// <summary>The trainable tensors as runs of the flat buffers, as freezing and <see cref="Optimizer.DecayPredicate"/> leave them now.</summary>
    private ParameterRuns Trainable()
    {
        _runs.Set(Network.Device, Store.Parameters, DecayPredicate);
        return _runs;
    }

    /// <summary>Updates all of <paramref name="runs"/> at once and returns true, or returns false to be called per tensor.</summary>
    private protected virtual bool UpdateAll(ParameterRuns runs) => false;

    /// <summary>Holds the device for one call (as the twin's calls do), after checking that the optimizer, its twin and
    /// the device are alive.</summary>
    private protected Lock.Scope Enter()
    {
        var scope = Network.EnterAlive();
        if (_disposed)
        {
            scope.Dispose();
            throw new ObjectDisposedException(GetType().Name, $"{GetType().Name} of {Network.Name} has been disposed: its state on the device is gone.");
        }
        return scope;
    }

    /// <summary>One parameter's update on the device: what a custom device optimizer overrides (the built-in ones update
    /// every tensor in one launch and never call it).</summary>
    protected virtual void Update(ParameterInfo p, ArrayView<float> value, ArrayView<float> gradient) =>
        throw new NotSupportedException($"{GetType().Name} does not override Update, so it cannot step {p.Name}.");

    /// <summary>Never called: <see cref="Step"/> updates the device's copy.</summary>
    protected sealed override void Update(ParameterInfo p, Span<float> value, Span<float> grad) =>
        throw new NotSupportedException($"{GetType().Name} steps the parameters on the device, not the host store's spans.");

    /// <summary>
    /// Scales the trainable gradients on the device so their global L2 norm is at most <paramref name="maxNorm"/>
    /// (torch.nn.utils.clip_grad_norm_, as the CPU's GradientClipping); returns the norm before clipping. One float
    /// comes back to the host to decide.
    /// </summary>
    /// <exception cref="ArithmeticException">When the gradients hold NaN or infinity.</exception>
    public override float ClipGradientNorm(float maxNorm)
    {
        using var exclusive = Enter();
        var kernels = Network.Device.Kernels;
        var trainable = Trainable();
        var sum = _normSquared ??= Network.Device.Allocate(1 + GpuKernels.SquarePartials);
        sum.View.SubView(0, 1).MemSetToZero();
        kernels.AddSumOfSquares(sum.View, Network.AllGradients, trainable);
        Span<float> host = stackalloc float[1];
        DeviceNetwork.Download(sum.View, host);
        float norm = MathF.Sqrt(host[0]);
        if (!float.IsFinite(norm)) throw new ArithmeticException($"{Network.Name}: the gradients are not finite (NaN or infinity); lower the learning rate.");
        if (norm > maxNorm)
        {
            float scale = maxNorm / (norm + 1e-6f);
            kernels.Scale(Network.AllGradients, trainable, scale);
        }
        return norm;
    }

    /// <summary>Multiplies every gradient on the device by <paramref name="scale"/>.</summary>
    public override void ScaleGradients(float scale)
    {
        using var exclusive = Enter();
        Network.Device.Kernels.Scale(Network.AllGradients, Network.ParameterFloats, scale);
    }

    /// <summary>Copies the device's parameters and buffers to the host store.</summary>
    public override void ParametersToStore() => Network.CopyParametersToHost();

    /// <summary>Copies the host store's parameters and buffers to the device.</summary>
    public override void ParametersFromStore() => Network.CopyParametersFromHost();

    /// <inheritdoc/>
    public override void GradientsToStore() => Network.CopyGradientsToHost();

    /// <inheritdoc/>
    public override void GradientsFromStore() => Network.CopyGradientsFromHost();

    /// <summary>A zeroed state buffer as long as all parameters.</summary>
    private protected MemoryBuffer1D<float, Stride1D.Dense> NewDeviceMoment()
    {
        var b = Network.Device.Allocate(Network.ParameterFloats);
        b.View.MemSetToZero();
        return b;
    }

    /// <summary>A state buffer's values, downloaded for a checkpoint.</summary>
    private protected float[] Export(MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        using var exclusive = Enter();
        var host = new float[buffer.Length];
        DeviceNetwork.Download(buffer.View, host);
        return host;
    }

    /// <summary>A checkpoint's state entry, uploaded.</summary>
    private protected void Import(IReadOnlyDictionary<string, float[]> state, string name, MemoryBuffer1D<float, Stride1D.Dense> buffer)
    {
        using var exclusive = Enter();
        DeviceNetwork.Upload<float>(Get(state, name, checked((int)buffer.Length)), buffer.View);
    }

    /// <summary>Frees the optimizer state on the device.</summary>
    public virtual void Dispose()
    {
        using var exclusive = Network.Device.Gate.EnterScope();
        _disposed = true;
        _normSquared?.Dispose();
        _runs.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>Adam (torch.optim.Adam; weight decay added to the gradient) on the device.</summary>
public class DeviceAdam : DeviceOptimizer
{
    private readonly float _beta1, _beta2, _eps, _weightDecay;
    private readonly bool _decoupled;
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _m, _v;

    public DeviceAdam(DeviceNetwork network, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0)
        : this(network, lr, beta1, beta2, eps, weightDecay, decoupled: false) { }

    private protected DeviceAdam(DeviceNetwork network, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled) : base(network, lr)
    {
        _beta1 = Hyperparameter(beta1, nameof(beta1), below: 1); _beta2 = Hyperparameter(beta2, nameof(beta2), below: 1);
        _eps = Hyperparameter(eps, nameof(eps)); _weightDecay = Hyperparameter(weightDecay, nameof(weightDecay)); _decoupled = decoupled;
        _m = NewDeviceMoment(); _v = NewDeviceMoment();
    }

    private protected override bool UpdateAll(ParameterRuns runs)
    {
        double bc1 = 1 - Math.Pow(_beta1, StepCount), bc2 = 1 - Math.Pow(_beta2, StepCount);
        Network.Device.Kernels.Adam(Network.AllValues, Network.AllGradients, _m.View, _v.View, runs, new AdamArgs
        {
            Beta1 = _beta1, Beta2 = _beta2, Eps = _eps, StepSize = (float)(LearningRate / bc1), Bc2Sqrt = (float)Math.Sqrt(bc2),
            Decay = _decoupled ? 1 - LearningRate * _weightDecay : 1f, CoupledWd = _decoupled ? 0f : _weightDecay,
        });
        return true;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Name, float[] Data)> ExportState()
    {
        foreach (var s in base.ExportState()) yield return s;
        yield return ("exp_avg", Export(_m));
        yield return ("exp_avg_sq", Export(_v));
    }

    /// <inheritdoc/>
    public override void ImportState(IReadOnlyDictionary<string, float[]> state)
    {
        base.ImportState(state);
        Import(state, "exp_avg", _m);
        Import(state, "exp_avg_sq", _v);
    }

    public override void Dispose()
    {
        using var exclusive = Network.Device.Gate.EnterScope(); // not while a step of another thread reads the moments
        _m.Dispose(); _v.Dispose();
        base.Dispose();
    }
}

/// <summary>AdamW (torch.optim.AdamW: decoupled weight decay) on the device.</summary>
public sealed class DeviceAdamW : DeviceAdam
{
    public DeviceAdamW(DeviceNetwork network, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0.01f)
        : base(network, lr, beta1, beta2, eps, weightDecay, decoupled: true) { }
}

/// <summary>SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD) on the device.</summary>
public sealed class DeviceSgd : DeviceOptimizer
{
    private readonly float _momentum, _dampening, _weightDecay;
    private readonly bool _nesterov;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _buf;

    public DeviceSgd(DeviceNetwork network, float lr, float momentum = 0, float dampening = 0, float weightDecay = 0, bool nesterov = false) : base(network, lr)
    {
        if (nesterov && (momentum <= 0 || dampening != 0)) throw new ArgumentException("Nesterov momentum requires momentum > 0 and zero dampening.");
        _momentum = Hyperparameter(momentum, nameof(momentum)); _dampening = Hyperparameter(dampening, nameof(dampening));
        _weightDecay = Hyperparameter(weightDecay, nameof(weightDecay)); _nesterov = nesterov;
        if (momentum != 0) _buf = NewDeviceMoment();
    }

    private protected override bool UpdateAll(ParameterRuns runs)
    {
        Network.Device.Kernels.Sgd(Network.AllValues, Network.AllGradients, _buf is null ? Network.AllValues : _buf.View, runs, new SgdArgs
        {
            LearningRate = LearningRate, Momentum = _momentum, Undamped = 1f - _dampening, WeightDecay = _weightDecay,
            Nesterov = _nesterov ? 1 : 0, First = StepCount == 1 ? 1 : 0,
        });
        return true;
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Name, float[] Data)> ExportState()
    {
        foreach (var s in base.ExportState()) yield return s;
        if (_buf is not null) yield return ("momentum_buffer", Export(_buf));
    }

    /// <inheritdoc/>
    public override void ImportState(IReadOnlyDictionary<string, float[]> state)
    {
        base.ImportState(state);
        if (_buf is not null) Import(state, "momentum_buffer", _buf);
    }

    public override void Dispose()
    {
        using var exclusive = Network.Device.Gate.EnterScope();
        _buf?.Dispose();
        base.Dispose();
    }
}
