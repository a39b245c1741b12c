using Compiled.Nets.Kernels;

namespace Compiled.Nets;

/// <summary>
/// A recurrent layer's handle (<c>nn.LSTM</c> / <c>nn.GRU</c> with <c>batch_first=True</c>): [B, T, input] →
/// [B, T, directions·hidden], the top layer's output at every position. Tensors as PyTorch names them:
/// <c>weight_ih_l{k}</c> [G·hidden, in], <c>weight_hh_l{k}</c> [G·hidden, hidden], <c>bias_ih_l{k}</c>,
/// <c>bias_hh_l{k}</c> [G·hidden], with <c>_reverse</c> for the backward direction. A [B, T] mask on the input
/// (<see cref="Tensor.WithMask"/>) makes padded positions keep the state and output zeros: PyTorch's packed sequences.
/// </summary>
public abstract class RecurrentLayer : ILayer
{
    private readonly ParameterStore _store;
    private readonly bool _lstm;
    private readonly ParameterInfo[] _wIh, _wHh;
    private readonly ParameterInfo?[] _bIh, _bHh;

    private protected RecurrentLayer(ParameterStore store, string name, bool lstm, int inputSize, int hiddenSize, int numLayers, bool bidirectional, bool bias)
    {
        if (inputSize <= 0 || hiddenSize <= 0 || numLayers <= 0)
            throw new ArgumentException($"{(lstm ? "LSTM" : "GRU")}: input size {inputSize}, hidden size {hiddenSize} and layers {numLayers} must be positive.");
        _store = store; _lstm = lstm;
        InputSize = inputSize; HiddenSize = hiddenSize; NumLayers = numLayers; Bidirectional = bidirectional;
        int n = numLayers * Directions;
        (_wIh, _wHh, _bIh, _bHh) = (new ParameterInfo[n], new ParameterInfo[n], new ParameterInfo?[n], new ParameterInfo?[n]);
        for (int l = 0; l < numLayers; l++)
            for (int d = 0; d < Directions; d++)
            {
                string suffix = $"_l{l}{(d == 1 ? "_reverse" : "")}";
                int k = l * Directions + d;
                _wIh[k] = store[$"{name}.weight_ih{suffix}"];
                _wHh[k] = store[$"{name}.weight_hh{suffix}"];
                _bIh[k] = bias ? store[$"{name}.bias_ih{suffix}"] : null;
                _bHh[k] = bias ? store[$"{name}.bias_hh{suffix}"] : null;
            }
    }

    /// <summary>Features per input position.</summary>
    public int InputSize { get; }
    /// <summary>Features of the state per direction.</summary>
    public int HiddenSize { get; }
    /// <summary>Stacked layers.</summary>
    public int NumLayers { get; }
    /// <summary>Whether a second direction reads the sequence backwards.</summary>
    public bool Bidirectional { get; }
    /// <summary>1 or 2.</summary>
    public int Directions => Bidirectional ? 2 : 1;
    /// <summary>Features per output position: directions × hidden size.</summary>
    public int OutputSize => Directions * HiddenSize;

    private int Gates => _lstm ? 4 : 3;

    /// <inheritdoc/>
    public Tensor Forward(Tensor x)
    {
        string kind = _lstm ? "LSTM" : "GRU";
        if (x.Shape.Length != 3 || x.Shape[2] != InputSize)
            throw new ArgumentException($"{kind}({InputSize}, {HiddenSize}) expects [B, T, {InputSize}], got {x.ShapeText()}.");
        int batch = x.Shape[0], seq = x.Shape[1], h = HiddenSize, width = OutputSize, rows = batch * seq;
        var mask = x.Mask ?? [];
        var s = _store;
        // Per layer: its input, output and per direction the saved gates, states and cells / hidden terms.
        var inputs = new float[NumLayers][];
        var outputs = new float[NumLayers][];
        var saved = new (float[] Gates, float[] States, float[] Extra)[NumLayers * Directions];
        var carry = new float[RecurrentKernels.CarrySize(batch, h)];
        float[] layerInput = x.Data;
        for (int l = 0; l < NumLayers; l++)
        {
            int inSize = l == 0 ? InputSize : width;
            inputs[l] = layerInput;
            outputs[l] = new float[rows * width];
            for (int d = 0; d < Directions; d++)
            {
                int k = l * Directions + d;
                var (g, st, ex) = saved[k] = (new float[rows * Gates * h], new float[rows * h], new float[rows * h]);
                ReadOnlySpan<float> bIh = Read(_bIh[k]), bHh = Read(_bHh[k]);
                if (_lstm) RecurrentKernels.LstmForward(outputs[l], width, d * h, g, st, ex, layerInput, s.ReadValue(_wIh[k]), s.ReadValue(_wHh[k]), bIh, bHh, mask, batch, seq, inSize, h, reverse: d == 1);
                else RecurrentKernels.GruForward(outputs[l], width, d * h, g, st, ex, layerInput, s.ReadValue(_wIh[k]), s.ReadValue(_wHh[k]), bIh, bHh, mask, batch, seq, inSize, h, reverse: d == 1, carry);
            }
            layerInput = outputs[l];
        }
        return Tensor.Result(outputs[^1], [batch, seq, width], [x], r =>
        {
            float[] dy = r.Grad!;
            for (int l = NumLayers - 1; l >= 0; l--)
            {
                int inSize = l == 0 ? InputSize : width;
                float[] dx = l == 0 ? x.GradBuffer : new float[rows * width];
                for (int d = 0; d < Directions; d++)
                {
                    int k = l * Directions + d;
                    var (g, st, ex) = saved[k];
                    if (_lstm)
                        RecurrentKernels.LstmBackward(dx, Gradient(_wIh[k]), Gradient(_wHh[k]), Gradient(_bIh[k]), Gradient(_bHh[k]), dy, width, d * h, g, st, ex,
                            inputs[l], s.ReadValue(_wIh[k]), s.ReadValue(_wHh[k]), mask, batch, seq, inSize, h, reverse: d == 1, carry);
                    else
                        RecurrentKernels.GruBackward(dx, Gradient(_wIh[k]), Gradient(_wHh[k]), Gradient(_bIh[k]), Gradient(_bHh[k]), dy, width, d * h, g, st, ex,
                            inputs[l], s.ReadValue(_wIh[k]), s.ReadValue(_wHh[k]), mask, batch, seq, inSize, h, reverse: d == 1, carry);
                }
                dy = dx;
            }
        });
    }

    private ReadOnlySpan<float> Read(ParameterInfo? p) => p is null ? default : _store.ReadValue(p);
    private Span<float> Gradient(ParameterInfo? p) => p is { RequiresGrad: true } ? _store.Gradient(p) : default;
}

/// <summary>Long short-term memory (<c>nn.LSTM</c>, batch first; gates i, f, g, o as PyTorch stores them).</summary>
public sealed class LSTM : RecurrentLayer
{
    /// <summary>Binds to PyTorch's <c>weight_ih_l0</c>, <c>weight_hh_l0</c>, <c>bias_ih_l0</c>, <c>bias_hh_l0</c>… under <paramref name="name"/>.</summary>
    public LSTM(ParameterStore store, string name, int inputSize, int hiddenSize, int numLayers, bool bidirectional, bool bias)
        : base(store, name, lstm: true, inputSize, hiddenSize, numLayers, bidirectional, bias) { }
}

/// <summary>Gated recurrent unit (<c>nn.GRU</c>, batch first; gates r, z, n as PyTorch stores them).</summary>
public sealed class GRU : RecurrentLayer
{
    /// <summary>Binds to PyTorch's <c>weight_ih_l0</c>, <c>weight_hh_l0</c>, <c>bias_ih_l0</c>, <c>bias_hh_l0</c>… under <paramref name="name"/>.</summary>
    public GRU(ParameterStore store, string name, int inputSize, int hiddenSize, int numLayers, bool bidirectional, bool bias)
        : base(store, name, lstm: false, inputSize, hiddenSize, numLayers, bidirectional, bias) { }
}
