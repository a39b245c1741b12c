using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one recurrent layer and direction on the device.</summary>
internal struct RecurrentArgs
{
    public int Batch, Seq, Hidden, YWidth, YOffset, Reverse, Masked, Lstm, HasHiddenBias;
    public readonly int Gates => Lstm != 0 ? 4 : 3;
}

/// <summary>Scalars of a recurrent weight's gradient: its rows, the gradients' width and first column, the direction.</summary>
internal struct RecurrentWeightArgs
{
    public int Rows, Hidden, Batch, Seq, SourceWidth, SourceOffset, Reverse;
}

// nn.LSTM and nn.GRU on the device, batch first, with the CPU runtime's RecurrentKernels' layout and semantics (gates in
// PyTorch's order; a padded position keeps the state and outputs zeros, so right padding gives packed-sequence
// results; saved gates, states and cells / hidden terms, which backward turns into their gradients in place).
// The input projection of every position is one GEMM; the time loop is ONE kernel per layer and direction: a group of
// threads per sample walks the positions, each thread owning hidden units, with a group barrier between positions (the
// next position reads every unit's state). Backward walks back the same way, carrying dh and dc per unit, and leaves
// the weights' gradients to GEMMs and a column-sum per bias after the loop.
public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>? _recurrentSteps;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>? _recurrentBackSteps;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, RecurrentWeightArgs>? _recurrentWeightGrad;

    /// <summary>Floats per sample of the carry <see cref="RecurrentBackward"/> needs: dh and dc per hidden unit.</summary>
    public static int RecurrentCarry(int hidden) => 2 * hidden;

    /// <summary>
    /// One layer in one direction over the sequence (LSTM when <paramref name="lstm"/>, else GRU), as
    /// RecurrentKernels.LstmForward/GruForward: y's columns [yOffset, yOffset + H) of each position, the gates after
    /// their nonlinearities, the states and the cells (LSTM) or hidden terms W_hn·h + b_hn (GRU) saved. Biases may be
    /// empty (bias: false). With <paramref name="masked"/>, positions whose mask entry is 0 keep the state and output 0.
    /// </summary>
    public void RecurrentForward(bool lstm, ArrayView<float> y, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<float> bIh, ArrayView<float> bHh, ArrayView<int> mask, bool masked,
        int batch, int seq, int input, int hidden, bool reverse)
    {
        var a = RecurrentChecked(lstm, y, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, masked, batch, seq, input, hidden, reverse, bHh.Length > 0);
        int rows = checked(batch * seq), gw = a.Gates * hidden;
        Gemm(false, true, rows, gw, input, 1f, x, input, wIh, input, 0f, gates, gw);
        if (bIh.Length > 0) AddBroadcast(gates, gates, bIh, (long)rows * gw, gw);
        if (lstm && bHh.Length > 0) AddBroadcast(gates, gates, bHh, (long)rows * gw, gw);
        _recurrentSteps ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>(RecurrentStepsKernel);
        Launched();
        _recurrentSteps(StepsConfig(batch, hidden), y, gates, states, extra, wHh, bHh.Length > 0 ? bHh : wHh, masked ? mask : StepsMask(mask), a);
    }

    /// <summary>
    /// Backward through time of <see cref="RecurrentForward"/>: dx (empty: not needed), dW_ih, dW_hh, db_ih, db_hh
    /// (empty: no bias) are added to from dy's columns of this direction; the saved gates (and a GRU's hidden terms)
    /// become their gradients. <paramref name="carry"/> holds <see cref="RecurrentCarry"/> floats per sample.
    /// </summary>
    public void RecurrentBackward(bool lstm, ArrayView<float> dx, ArrayView<float> dWih, ArrayView<float> dWhh, ArrayView<float> dBih, ArrayView<float> dBhh,
        ArrayView<float> dy, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<int> mask, bool masked, ArrayView<float> carry,
        int batch, int seq, int input, int hidden, bool reverse)
    {
        var a = RecurrentChecked(lstm, dy, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, masked, batch, seq, input, hidden, reverse, dBhh.Length > 0);
        Need(carry, (long)batch * RecurrentCarry(hidden), nameof(carry));
        int rows = checked(batch * seq), gw = a.Gates * hidden, h = hidden;
        _recurrentBackSteps ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>(RecurrentBackStepsKernel);
        Launched();
        _recurrentBackSteps(StepsConfig(batch, hidden), dy, gates, states, extra, wHh, carry, masked ? mask : StepsMask(mask), a);
        // The gates' gradients through the input projection: dx += dG·W_ih, dW_ih += dGᵀ·x, db_ih += Σ dG.
        if (dx.Length > 0) Gemm(false, false, rows, input, gw, 1f, gates, gw, wIh, input, 1f, dx, input);
        Gemm(true, false, gw, input, rows, 1f, gates, gw, x, input, 1f, dWih, input);
        if (dBih.Length > 0) AddColumnSums(dBih, gates, rows, gw, gw, 0);
        if (lstm)
        {
            if (dBhh.Length > 0) AddColumnSums(dBhh, gates, rows, gw, gw, 0);
            RecurrentWeightGradient(dWhh, gates, gw, 0, gw, states, batch, seq, h, reverse);
            return;
        }
        // GRU: r's and z's rows of W_hh from their gates' gradients, n's from the hidden term's.
        if (dBhh.Length > 0)
        {
            AddColumnSums(dBhh, gates, rows, 2 * h, gw, 0);
            AddColumnSums(dBhh.SubView(2 * h, h), extra, rows, h, h, 0);
        }
        RecurrentWeightGradient(dWhh, gates, gw, 0, 2 * h, states, batch, seq, h, reverse);
        RecurrentWeightGradient(dWhh.SubView(2L * h * h, (long)h * h), extra, h, 0, h, states, batch, seq, h, reverse);
    }

    private RecurrentArgs RecurrentChecked(bool lstm, ArrayView<float> y, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<int> mask, bool masked, int batch, int seq, int input, int hidden, bool reverse, bool hiddenBias)
    {
        string layer = lstm ? "LSTM" : "GRU";
        if (batch <= 0 || seq <= 0 || input <= 0 || hidden <= 0)
            throw new ArgumentException($"{layer}: batch {batch}, sequence {seq}, input {input} and hidden {hidden} must be positive.");
        if (yOffset < 0 || yOffset + hidden > yWidth) throw new ArgumentException($"{layer}: columns [{yOffset}, {yOffset + hidden}) do not fit an output {yWidth} wide.");
        int g = lstm ? 4 : 3;
        long rows = (long)batch * seq;
        Need(y, rows * yWidth, nameof(y)); Need(gates, rows * g * hidden, nameof(gates)); Need(states, rows * hidden, nameof(states)); Need(extra, rows * hidden, nameof(extra));
        Need(x, rows * input, nameof(x)); Need(wIh, (long)g * hidden * input, nameof(wIh)); Need(wHh, (long)g * hidden * hidden, nameof(wHh));
        if (masked) Need(mask, rows, nameof(mask));
        return new RecurrentArgs
        {
            Batch = batch, Seq = seq, Hidden = hidden, YWidth = yWidth, YOffset = yOffset, Reverse = reverse ? 1 : 0, Masked = masked ? 1 : 0,
            Lstm = lstm ? 1 : 0, HasHiddenBias = hiddenBias ? 1 : 0,
        };
    }

    /// <summary>One group per sample, as many threads as hidden units up to the device's group size (each then owns several).</summary>
    private KernelConfig StepsConfig(int batch, int hidden) => new(batch, Math.Min(hidden, Math.Min(Accelerator.MaxNumThreadsPerGroup, 256)));

    /// <summary>An unmasked call still passes an int view (never read).</summary>
    private ArrayView<int> StepsMask(ArrayView<int> mask) => mask.Length > 0 ? mask : (_noMask ??= Accelerator.Allocate1D<int>(1)).View;

    private MemoryBuffer1D<int, Stride1D.Dense>? _noMask;

    private static void RecurrentStepsKernel(ArrayView<float> y, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra, ArrayView<float> wHh, ArrayView<float> bHh,
        ArrayView<int> mask, RecurrentArgs a)
    {
        int b = Grid.IdxX, h = a.Hidden, seq = a.Seq, gw = a.Gates * h;
        for (int s = 0; s < seq; s++)
        {
            int t = a.Reverse != 0 ? seq - 1 - s : s, tp = a.Reverse != 0 ? t + 1 : t - 1;
            long row = (long)b * seq + t, prev = (long)b * seq + tp;
            bool real = a.Masked == 0 || mask[b * seq + t] != 0;
            for (int j = Group.IdxX; j < h; j += Group.DimX)
            {
                long at = row * h + j, gate = row * gw + j, output = row * a.YWidth + a.YOffset + j;
                if (!real)
                {
                    // The state (and an LSTM's cell) passes through; the gates, a GRU's hidden term and the output are 0.
                    states[at] = s > 0 ? states[prev * h + j] : 0f;
                    extra[at] = a.Lstm != 0 && s > 0 ? extra[prev * h + j] : 0f;
                    for (int k = 0; k < a.Gates; k++) gates[gate + k * h] = 0f;
                    y[output] = 0f;
                    continue;
                }
                if (a.Lstm != 0)
                {
                    float pi = gates[gate], pf = gates[gate + h], pg = gates[gate + 2 * h], po = gates[gate + 3 * h];
                    if (s > 0)
                        for (int q = 0; q < h; q++)
                        {
                            float hq = states[prev * h + q];
                            pi += hq * wHh[(long)j * h + q]; pf += hq * wHh[(long)(h + j) * h + q];
                            pg += hq * wHh[(long)(2 * h + j) * h + q]; po += hq * wHh[(long)(3 * h + j) * h + q];
                        }
                    float i = Sigmoid(pi), f = Sigmoid(pf), g = XMath.Tanh(pg), o = Sigmoid(po);
                    float c = i * g + (s > 0 ? f * extra[prev * h + j] : 0f), hv = o * XMath.Tanh(c);
                    gates[gate] = i; gates[gate + h] = f; gates[gate + 2 * h] = g; gates[gate + 3 * h] = o;
                    extra[at] = c; states[at] = hv; y[output] = hv;
                }
                else
                {
                    bool bias = a.HasHiddenBias != 0;
                    float hr = bias ? bHh[j] : 0f, hz = bias ? bHh[h + j] : 0f, hn = bias ? bHh[2 * h + j] : 0f;
                    if (s > 0)
                        for (int q = 0; q < h; q++)
                        {
                            float hq = states[prev * h + q];
                            hr += hq * wHh[(long)j * h + q]; hz += hq * wHh[(long)(h + j) * h + q]; hn += hq * wHh[(long)(2 * h + j) * h + q];
                        }
                    float r = Sigmoid(gates[gate] + hr), z = Sigmoid(gates[gate + h] + hz), n = XMath.Tanh(gates[gate + 2 * h] + r * hn);
                    float hv = s > 0 ? n + z * (states[prev * h + j] - n) : n - z * n;
                    gates[gate] = r; gates[gate + h] = z; gates[gate + 2 * h] = n;
                    extra[at] = hn; states[at] = hv; y[output] = hv;
                }
            }
            // The next position reads every unit's state of this one.
            Group.Barrier();
        }
    }

    private static void RecurrentBackStepsKernel(ArrayView<float> dy, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra, ArrayView<float> wHh, ArrayView<float> carry,
        ArrayView<int> mask, RecurrentArgs a)
    {
        int b = Grid.IdxX, h = a.Hidden, seq = a.Seq, gw = a.Gates * h;
        long dh = (long)b * 2 * h, dc = dh + h;
        for (int j = Group.IdxX; j < h; j += Group.DimX) { carry[dh + j] = 0f; carry[dc + j] = 0f; }
        for (int s = seq - 1; s >= 0; s--)
        {
            int t = a.Reverse != 0 ? seq - 1 - s : s, tp = a.Reverse != 0 ? t + 1 : t - 1;
            long row = (long)b * seq + t, prev = (long)b * seq + tp;
            bool real = a.Masked == 0 || mask[b * seq + t] != 0;
            for (int j = Group.IdxX; j < h; j += Group.DimX)
            {
                long gate = row * gw + j;
                if (!real)
                {
                    // A padded position passed the state through: its carried gradients pass back unchanged.
                    for (int k = 0; k < a.Gates; k++) gates[gate + k * h] = 0f;
                    if (a.Lstm == 0) extra[row * h + j] = 0f;
                    continue;
                }
                float d = carry[dh + j] + dy[row * a.YWidth + a.YOffset + j];
                if (a.Lstm != 0)
                {
                    float i = gates[gate], f = gates[gate + h], g = gates[gate + 2 * h], o = gates[gate + 3 * h];
                    float tc = XMath.Tanh(extra[row * h + j]), cPrev = s > 0 ? extra[prev * h + j] : 0f;
                    float dcj = carry[dc + j] + d * o * (1f - tc * tc);
                    gates[gate] = dcj * g * i * (1f - i);
                    gates[gate + h] = s > 0 ? dcj * cPrev * f * (1f - f) : 0f;
                    gates[gate + 2 * h] = dcj * i * (1f - g * g);
                    gates[gate + 3 * h] = d * tc * o * (1f - o);
                    carry[dc + j] = dcj * f;
                    carry[dh + j] = d;
                }
                else
                {
                    float r = gates[gate], z = gates[gate + h], n = gates[gate + 2 * h], previous = s > 0 ? states[prev * h + j] : 0f;
                    float dn = d * (1f - z) * (1f - n * n);
                    gates[gate] = dn * extra[row * h + j] * r * (1f - r);
                    gates[gate + h] = d * (previous - n) * z * (1f - z);
                    gates[gate + 2 * h] = dn;
                    extra[row * h + j] = dn * r;
                    carry[dh + j] = d * z;
                }
            }
            if (s == 0) break;
            // dh for the previous position reads every unit's gate gradients of this one.
            Group.Barrier();
            if (!real) continue;
            for (int q = Group.IdxX; q < h; q += Group.DimX)
            {
                float sum = 0f;
                if (a.Lstm != 0)
                {
                    for (int r = 0; r < gw; r++) sum += gates[row * gw + r] * wHh[(long)r * h + q];
                    carry[dh + q] = sum;
                }
                else
                {
                    for (int r = 0; r < 2 * h; r++) sum += gates[row * gw + r] * wHh[(long)r * h + q];
                    for (int r = 0; r < h; r++) sum += extra[row * h + r] * wHh[(long)(2 * h + r) * h + q];
                    carry[dh + q] += sum;
                }
            }
        }
    }

    private static float Sigmoid(float v) => 1f / (1f + XMath.Exp(-v));

    /// <summary>dW[r, q] += Σ over samples and positions with a predecessor of src[position, offset + r]·h[previous, q].</summary>
    private void RecurrentWeightGradient(ArrayView<float> dW, ArrayView<float> source, int sourceWidth, int sourceOffset, int rows, ArrayView<float> states,
        int batch, int seq, int hidden, bool reverse)
    {
        Need(dW, (long)rows * hidden, nameof(dW));
        _recurrentWeightGrad ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, RecurrentWeightArgs>(RecurrentWeightGradKernel);
        Launched();
        _recurrentWeightGrad(checked(rows * hidden), dW, source, states, new RecurrentWeightArgs
        {
            Rows = rows, Hidden = hidden, Batch = batch, Seq = seq, SourceWidth = sourceWidth, SourceOffset = sourceOffset, Reverse = reverse ? 1 : 0,
        });
    }

    private static void RecurrentWeightGradKernel(Index1D index, ArrayView<float> dW, ArrayView<float> source, ArrayView<float> states, RecurrentWeightArgs a)
    {
        int at = index;
        int r = at / a.Hidden, q = at % a.Hidden;
        float sum = 0f;
        for (int b = 0; b < a.Batch; b++)
            for (int s = 1; s < a.Seq; s++)
            {
                // Forward: positions 1..T-1 follow 0..T-2; reverse: 0..T-2 follow 1..T-1.
                int t = a.Reverse != 0 ? a.Seq - 1 - s : s, tp = a.Reverse != 0 ? t + 1 : t - 1;
                sum += source[((long)b * a.Seq + t) * a.SourceWidth + a.SourceOffset + r] * states[((long)b * a.Seq + tp) * a.Hidden + q];
            }
        dW[at] += sum;
    }
}
