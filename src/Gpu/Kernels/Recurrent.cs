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

// nn.LSTM and nn.GRU on the device, batch first, with the CPU runtime's RecurrentKernels' layout and semantics (gates in
// PyTorch's order; a padded position keeps the state and outputs zeros, so right padding gives packed-sequence
// results; saved gates, states and cells / hidden terms, which backward turns into their gradients in place).
// The input projection of every position is one GEMM; the time loop is ONE kernel per layer and direction: a group of
// threads per sample walks the positions, each thread owning hidden units, with a group barrier between positions (the
// next position reads every unit's state). Forward reads W_hh transposed (copied into the scratch first), so a warp's
// threads, one unit each, read neighbouring weights, and the previous state from shared memory. Backward walks back
// the same way, carrying dh and dc per unit (reading W_hh as it is: there a thread owns a column), and leaves the
// weights' gradients to GEMMs — W_hh's over the states shifted by one position — and a column-sum per bias.
public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>? _recurrentSteps;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>? _recurrentBackSteps;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int>? _transpose;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, RecurrentArgs>? _shiftStates;

    /// <summary>Floats per sample of the carry <see cref="RecurrentBackward"/> needs: dh and dc per hidden unit.</summary>
    public static int RecurrentCarry(int hidden) => 2 * hidden;

    /// <summary>Scratch floats <see cref="RecurrentForward"/> and <see cref="RecurrentBackward"/> need: W_hh transposed
    /// forward, every position's previous state backward.</summary>
    public static long RecurrentScratch(bool lstm, int batch, int seq, int hidden) => Math.Max((lstm ? 4L : 3L) * hidden * hidden, (long)batch * seq * hidden);

    /// <summary>
    /// One layer in one direction over the sequence (LSTM when <paramref name="lstm"/>, else GRU), as
    /// RecurrentKernels.LstmForward/GruForward: y's columns [yOffset, yOffset + H) of each position, the gates after
    /// their nonlinearities, the states and the cells (LSTM) or hidden terms W_hn·h + b_hn (GRU) saved. Biases may be
    /// empty (bias: false). With <paramref name="masked"/>, positions whose mask entry is 0 keep the state and output 0.
    /// </summary>
    public void RecurrentForward(bool lstm, ArrayView<float> y, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<float> bIh, ArrayView<float> bHh, ArrayView<int> mask, bool masked,
        ArrayView<float> scratch, int batch, int seq, int input, int hidden, bool reverse)
    {
        var a = RecurrentChecked(lstm, y, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, masked, scratch, batch, seq, input, hidden, reverse, bHh.Length > 0);
        int rows = checked(batch * seq), gw = a.Gates * hidden;
        Gemm(false, true, rows, gw, input, 1f, x, input, wIh, input, 0f, gates, gw);
        if (bIh.Length > 0) AddBroadcast(gates, gates, bIh, (long)rows * gw, gw);
        if (lstm && bHh.Length > 0) AddBroadcast(gates, gates, bHh, (long)rows * gw, gw);
        _transpose ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int, int>(TransposeKernel);
        Launched();
        _transpose(gw * hidden, scratch, wHh, gw, hidden);
        _recurrentSteps ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>(RecurrentStepsKernel);
        Launched();
        _recurrentSteps(StepsConfig(batch, hidden, staged: true), y, gates, states, extra, scratch, bHh.Length > 0 ? bHh : wHh, masked ? mask : StepsMask(mask), a);
    }

    /// <summary>
    /// Backward through time of <see cref="RecurrentForward"/>: dx (empty: not needed), dW_ih, dW_hh, db_ih, db_hh
    /// (empty: no bias) are added to from dy's columns of this direction; the saved gates (and a GRU's hidden terms)
    /// become their gradients. <paramref name="carry"/> holds <see cref="RecurrentCarry"/> floats per sample.
    /// </summary>
    public void RecurrentBackward(bool lstm, ArrayView<float> dx, ArrayView<float> dWih, ArrayView<float> dWhh, ArrayView<float> dBih, ArrayView<float> dBhh,
        ArrayView<float> dy, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<int> mask, bool masked, ArrayView<float> carry, ArrayView<float> scratch,
        int batch, int seq, int input, int hidden, bool reverse)
    {
        var a = RecurrentChecked(lstm, dy, yWidth, yOffset, gates, states, extra, x, wIh, wHh, mask, masked, scratch, batch, seq, input, hidden, reverse, dBhh.Length > 0);
        Need(carry, (long)batch * RecurrentCarry(hidden), nameof(carry));
        int rows = checked(batch * seq), gw = a.Gates * hidden, h = hidden;
        _recurrentBackSteps ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, RecurrentArgs>(RecurrentBackStepsKernel);
        Launched();
        _recurrentBackSteps(StepsConfig(batch, hidden, staged: false), dy, gates, states, extra, wHh, carry, masked ? mask : StepsMask(mask), a);
        // The gates' gradients through the input projection: dx += dG·W_ih, dW_ih += dGᵀ·x, db_ih += Σ dG.
        if (dx.Length > 0) Gemm(false, false, rows, input, gw, 1f, gates, gw, wIh, input, 1f, dx, input);
        if (dWih.Length > 0) Gemm(true, false, gw, input, rows, 1f, gates, gw, x, input, 1f, dWih, input);
        if (dBih.Length > 0) AddColumnSums(dBih, gates, rows, gw, gw, 0);
        // db_hh += Σ of the gates' gradients (a GRU's n rows from its hidden term's).
        if (dBhh.Length > 0)
        {
            if (lstm) AddColumnSums(dBhh, gates, rows, gw, gw, 0);
            else
            {
                AddColumnSums(dBhh, gates, rows, 2 * h, gw, 0);
                AddColumnSums(dBhh.SubView(2 * h, h), extra, rows, h, h, 0);
            }
        }
        if (dWhh.Length == 0) return;
        // dW_hh += Σ over positions of (the gates' gradients)ᵀ·(the previous state): one GEMM over the states shifted by
        // one position, zero where a sample's first position has none (so no sample's sum reaches into another's).
        _shiftStates ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, RecurrentArgs>(ShiftStatesKernel);
        Launched();
        _shiftStates(rows * h, scratch, states, a);
        if (lstm)
        {
            Gemm(true, false, gw, h, rows, 1f, gates, gw, scratch, h, 1f, dWhh, h);
            return;
        }
        // GRU: r's and z's rows of W_hh from their gates' gradients, n's from the hidden term's.
        Gemm(true, false, 2 * h, h, rows, 1f, gates, gw, scratch, h, 1f, dWhh, h);
        Gemm(true, false, h, h, rows, 1f, extra, h, scratch, h, 1f, dWhh.SubView(2L * h * h, (long)h * h), h);
    }

    private RecurrentArgs RecurrentChecked(bool lstm, ArrayView<float> y, int yWidth, int yOffset, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra,
        ArrayView<float> x, ArrayView<float> wIh, ArrayView<float> wHh, ArrayView<int> mask, bool masked, ArrayView<float> scratch, int batch, int seq, int input, int hidden, bool reverse, bool hiddenBias)
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
        Need(scratch, RecurrentScratch(lstm, batch, seq, hidden), nameof(scratch));
        if ((long)hidden * sizeof(float) > Accelerator.MaxSharedMemoryPerGroup)
            throw new ArgumentException($"{layer}: a hidden size of {hidden} needs {hidden * sizeof(float)} bytes of shared memory per group; this device has {Accelerator.MaxSharedMemoryPerGroup}.");
        return new RecurrentArgs
        {
            Batch = batch, Seq = seq, Hidden = hidden, YWidth = yWidth, YOffset = yOffset, Reverse = reverse ? 1 : 0, Masked = masked ? 1 : 0,
            Lstm = lstm ? 1 : 0, HasHiddenBias = hiddenBias ? 1 : 0,
        };
    }

    /// <summary>One group per sample, as many threads as hidden units up to the device's group size (each then owns
    /// several); <paramref name="staged"/>: with the previous state in shared memory.</summary>
    private KernelConfig StepsConfig(int batch, int hidden, bool staged) => new(batch, Math.Min(hidden, Math.Min(Accelerator.MaxNumThreadsPerGroup, 256)),
        staged ? SharedMemoryConfig.RequestDynamic<float>(hidden) : default);

    /// <summary>An unmasked call still passes an int view (never read).</summary>
    private ArrayView<int> StepsMask(ArrayView<int> mask) => mask.Length > 0 ? mask : (_noMask ??= Accelerator.Allocate1D<int>(1)).View;

    private MemoryBuffer1D<int, Stride1D.Dense>? _noMask;

    private static void RecurrentStepsKernel(ArrayView<float> y, ArrayView<float> gates, ArrayView<float> states, ArrayView<float> extra, ArrayView<float> wT, ArrayView<float> bHh,
        ArrayView<int> mask, RecurrentArgs a)
    {
        // wT is W_hh transposed: [H, G·H], so unit j's weight on state q is wT[q·G·H + gate·H + j].
        var previous = SharedMemory.GetDynamic<float>();
        int b = Grid.IdxX, h = a.Hidden, seq = a.Seq, gw = a.Gates * h;
        for (int s = 0; s < seq; s++)
        {
            int t = a.Reverse != 0 ? seq - 1 - s : s, tp = a.Reverse != 0 ? t + 1 : t - 1;
            long row = (long)b * seq + t, prev = (long)b * seq + tp;
            for (int q = Group.IdxX; q < h; q += Group.DimX) previous[q] = s > 0 ? states[prev * h + q] : 0f;
            Group.Barrier();
            bool real = a.Masked == 0 || mask[b * seq + t] != 0;
            for (int j = Group.IdxX; j < h; j += Group.DimX)
            {
                long at = row * h + j, gate = row * gw + j, output = row * a.YWidth + a.YOffset + j;
                if (!real)
                {
                    // The state (and an LSTM's cell) passes through; the gates, a GRU's hidden term and the output are 0.
                    states[at] = previous[j];
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
                            float hq = previous[q];
                            long w = (long)q * gw + j;
                            pi += hq * wT[w]; pf += hq * wT[w + h]; pg += hq * wT[w + 2 * h]; po += hq * wT[w + 3 * h];
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
                            float hq = previous[q];
                            long w = (long)q * gw + j;
                            hr += hq * wT[w]; hz += hq * wT[w + h]; hn += hq * wT[w + 2 * h];
                        }
                    float r = Sigmoid(gates[gate] + hr), z = Sigmoid(gates[gate + h] + hz), n = XMath.Tanh(gates[gate + 2 * h] + r * hn);
                    float hv = n + z * (previous[j] - n); // previous is 0 at the first position: (1 − z)·n
                    gates[gate] = r; gates[gate + h] = z; gates[gate + 2 * h] = n;
                    extra[at] = hn; states[at] = hv; y[output] = hv;
                }
            }
            // The next position stages every unit's state of this one.
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

    /// <summary>t[c, r] = w[r, c] for a <paramref name="rows"/> × <paramref name="cols"/> matrix.</summary>
    private static void TransposeKernel(Index1D index, ArrayView<float> t, ArrayView<float> w, int rows, int cols)
    {
        int i = index, c = i / rows, r = i % rows;
        t[i] = w[(long)r * cols + c];
    }

    /// <summary>Each position's row of <paramref name="previous"/>: the state of the position before it in this
    /// direction, zero at a sample's first.</summary>
    private static void ShiftStatesKernel(Index1D index, ArrayView<float> previous, ArrayView<float> states, RecurrentArgs a)
    {
        int i = index, h = a.Hidden, row = i / h, t = row % a.Seq, tp = a.Reverse != 0 ? t + 1 : t - 1;
        previous[i] = tp >= 0 && tp < a.Seq ? states[(long)(row - t + tp) * h + i % h] : 0f;
    }
}
