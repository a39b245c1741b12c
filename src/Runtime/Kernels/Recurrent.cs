using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// nn.LSTM and nn.GRU, batch first: one call runs one layer in one direction over the whole sequence.
// Dims: B batch, T positions, I input features, H hidden size, G gates (LSTM 4: i f g o; GRU 3: r z n — PyTorch's
// order, so weights load unchanged). x is [B, T, I]; y is [B, T, Y] of which this direction writes columns
// [offset, offset + H) (a bidirectional layer's two directions share y). Weights as PyTorch: wIh [G·H, I], wHh [G·H, H].
// mask is [B, T] of 0/1 (empty = every position real): a padded position keeps the state as it was and outputs zeros,
// so with right padding (a prefix of ones, as tokenizers produce) both directions give PyTorch's packed-sequence
// results; the reverse direction starts at each sample's last real position.
// Saved for backward: gates [B, T, G·H] after their nonlinearities, states [B, T, H] (h, carried across padding) and
// extra [B, T, H] (LSTM: the cells c; GRU: W_hn·h + b_hn, the candidate's hidden term). Backward overwrites gates and
// extra with their gradients, so one training step needs no other buffer than carry [B, 3H].
public static unsafe class RecurrentKernels
{
    /// <summary>Floats of the <c>carry</c> buffer the kernels take: 3·B·H.</summary>
    public static int CarrySize(int batch, int hidden) => 3 * batch * hidden;

    /// <summary>
    /// LSTM forward: i, f, g, o = σ, σ, tanh, σ of x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh; c = f⊙c + i⊙g; h = o⊙tanh(c).
    /// The initial state is zero.
    /// </summary>
    /// <exception cref="ArgumentException">When a buffer is too short for the sizes.</exception>
    public static void LstmForward(Span<float> y, int yWidth, int yOffset, Span<float> gates, Span<float> states, Span<float> cells,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh,
        ReadOnlySpan<int> mask, int batch, int seq, int input, int hidden, bool reverse)
    {
        int h = hidden, gw = 4 * h;
        Check("LSTM", y, yWidth, yOffset, gates, states, cells, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, h, 4);
        InputProjection(gates, x, wIh, bIh, bHh, batch * seq, input, gw);
        fixed (float* py = y) fixed (float* pg = gates) fixed (float* ps = states) fixed (float* pc = cells) fixed (float* pw = wHh) fixed (int* pm = mask)
        {
            var a = new Steps
            {
                Y = py, Gates = pg, States = ps, Extra = pc, WHh = pw, Mask = mask.IsEmpty ? null : pm,
                YWidth = yWidth, YOffset = yOffset, Batch = batch, Seq = seq, Hidden = h, Reverse = reverse,
            };
            RunHalves(&LstmHalf, &a);
        }
    }

    /// <summary>What one half of the batch needs for its time loop (the two halves are independent: each sample's
    /// recurrence reads only its own rows). Y is the output forward and its gradient backward; Extra the cells (LSTM) or
    /// the hidden terms (GRU).</summary>
    private struct Steps
    {
        public float* Y, Gates, States, Extra, WHh, Carry, BHh;
        public int* Mask;
        public int YWidth, YOffset, Batch, Seq, Hidden, BHhLength;
        public bool Reverse;
    }

    /// <summary>The time loop over two halves of the batch on the two cores when there is work enough for both (each
    /// half's per-step GEMM then runs on its core alone); one loop over the whole batch otherwise.</summary>
    private static void RunHalves(delegate*<void*, int, void> half, Steps* a)
    {
        if (a->Batch >= 2 && HelperThread.Available && (long)a->Batch * a->Seq * a->Hidden >= 16384) HelperThread.Run(half, a);
        else half(a, -1);
    }

    /// <summary>Rows [b0, b1) of half <paramref name="half"/> (-1: the whole batch).</summary>
    private static (int B0, int B1) Rows(int batch, int half) => half < 0 ? (0, batch) : half == 0 ? (0, batch / 2) : (batch / 2, batch);

    /// <summary>One position of one sample in one pass: the gates' nonlinearities (stored for backward), the new cell
    /// c = f⊙c_prev + i⊙g (c_prev empty at the first position) and state h = o⊙tanh(c), also written to the output.</summary>
    private static void LstmCell(Span<float> gate, ReadOnlySpan<float> cPrev, Span<float> c, Span<float> hOut, Span<float> output, int h)
    {
        ref float gr = ref MemoryMarshal.GetReference(gate);
        int j = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; j + 16 <= h; j += 16)
            {
                var i = Elementwise.Sigmoid(Vector512.LoadUnsafe(ref gr, (nuint)j));
                var f = Elementwise.Sigmoid(Vector512.LoadUnsafe(ref gr, (nuint)(h + j)));
                var g = Elementwise.Tanh(Vector512.LoadUnsafe(ref gr, (nuint)(2 * h + j)));
                var o = Elementwise.Sigmoid(Vector512.LoadUnsafe(ref gr, (nuint)(3 * h + j)));
                i.StoreUnsafe(ref gr, (nuint)j); f.StoreUnsafe(ref gr, (nuint)(h + j)); g.StoreUnsafe(ref gr, (nuint)(2 * h + j)); o.StoreUnsafe(ref gr, (nuint)(3 * h + j));
                var cell = i * g;
                if (!cPrev.IsEmpty) cell = Vector512.FusedMultiplyAdd(f, Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(cPrev), (nuint)j), cell);
                var state = o * Elementwise.Tanh(cell);
                cell.StoreUnsafe(ref MemoryMarshal.GetReference(c), (nuint)j);
                state.StoreUnsafe(ref MemoryMarshal.GetReference(hOut), (nuint)j);
                state.StoreUnsafe(ref MemoryMarshal.GetReference(output), (nuint)j);
            }
        else // without AVX-512 (Vector512 would be emulated in software): the same pass at half the width
            for (; j + 8 <= h; j += 8)
            {
                var i = Elementwise.Sigmoid(Vector256.LoadUnsafe(ref gr, (nuint)j));
                var f = Elementwise.Sigmoid(Vector256.LoadUnsafe(ref gr, (nuint)(h + j)));
                var g = Elementwise.Tanh(Vector256.LoadUnsafe(ref gr, (nuint)(2 * h + j)));
                var o = Elementwise.Sigmoid(Vector256.LoadUnsafe(ref gr, (nuint)(3 * h + j)));
                i.StoreUnsafe(ref gr, (nuint)j); f.StoreUnsafe(ref gr, (nuint)(h + j)); g.StoreUnsafe(ref gr, (nuint)(2 * h + j)); o.StoreUnsafe(ref gr, (nuint)(3 * h + j));
                var cell = i * g;
                if (!cPrev.IsEmpty) cell = Vector256.FusedMultiplyAdd(f, Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(cPrev), (nuint)j), cell);
                var state = o * Elementwise.Tanh(cell);
                cell.StoreUnsafe(ref MemoryMarshal.GetReference(c), (nuint)j);
                state.StoreUnsafe(ref MemoryMarshal.GetReference(hOut), (nuint)j);
                state.StoreUnsafe(ref MemoryMarshal.GetReference(output), (nuint)j);
            }
        for (; j < h; j++)
        {
            float i = Elementwise.Sigmoid(gate[j]), f = Elementwise.Sigmoid(gate[h + j]), g = MathF.Tanh(gate[2 * h + j]), o = Elementwise.Sigmoid(gate[3 * h + j]);
            gate[j] = i; gate[h + j] = f; gate[2 * h + j] = g; gate[3 * h + j] = o;
            float cell = i * g + (cPrev.IsEmpty ? 0f : f * cPrev[j]);
            c[j] = cell;
            hOut[j] = output[j] = o * MathF.Tanh(cell);
        }
    }

    private static void LstmHalf(void* state, int half)
    {
        var a = (Steps*)state;
        var (b0, b1) = Rows(a->Batch, half);
        int h = a->Hidden, seq = a->Seq, gw = 4 * h, rows = a->Batch * seq;
        var y = new Span<float>(a->Y, rows * a->YWidth);
        var gates = new Span<float>(a->Gates, rows * gw);
        var states = new Span<float>(a->States, rows * h);
        var cells = new Span<float>(a->Extra, rows * h);
        var wHh = new ReadOnlySpan<float>(a->WHh, gw * h);
        var mask = a->Mask == null ? default : new ReadOnlySpan<int>(a->Mask, rows);
        int first = b0 * seq;
        for (int s = 0; s < seq; s++)
        {
            int t = a->Reverse ? seq - 1 - s : s, tp = a->Reverse ? t + 1 : t - 1;
            // The recurrent term for these samples at once: rows of states and gates are T apart.
            if (s > 0) Gemm.Sgemm(false, true, b1 - b0, gw, h, 1f, states[((first + tp) * h)..], seq * h, wHh, h, 1f, gates[((first + t) * gw)..], seq * gw);
            for (int b = b0; b < b1; b++)
            {
                int row = b * seq + t, prev = b * seq + tp;
                var gate = gates.Slice(row * gw, gw);
                var hOut = states.Slice(row * h, h);
                var c = cells.Slice(row * h, h);
                var output = y.Slice(row * a->YWidth + a->YOffset, h);
                if (!IsReal(mask, b, seq, t))
                {
                    Carry(states, cells, hOut, c, prev, h, s > 0);
                    gate.Clear(); output.Clear();
                    continue;
                }
                LstmCell(gate, s > 0 ? cells.Slice(prev * h, h) : default, c, hOut, output, h);
            }
        }
    }

    /// <summary>
    /// LSTM backward through time: adds to dx, dW_ih, dW_hh, db_ih and db_hh (each may be empty to skip it) from dy's
    /// columns of this direction. <paramref name="gates"/> and <paramref name="cells"/> are what
    /// <see cref="LstmForward"/> saved; the gates are overwritten with their gradients.
    /// </summary>
    public static void LstmBackward(Span<float> dx, Span<float> dWih, Span<float> dWhh, Span<float> dBih, Span<float> dBhh,
        ReadOnlySpan<float> dy, int yWidth, int yOffset, Span<float> gates, ReadOnlySpan<float> states, ReadOnlySpan<float> cells,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<int> mask,
        int batch, int seq, int input, int hidden, bool reverse, Span<float> carry)
    {
        int h = hidden, gw = 4 * h, bh = batch * h;
        Check("LSTM", dy, yWidth, yOffset, gates, states, cells, x, wIh, wHh, default, default, mask, batch, seq, input, h, 4);
        CheckCarry("LSTM", carry, batch, h);
        carry[..(2 * bh)].Clear(); // dh, dc; the third part is scratch
        fixed (float* pdy = dy) fixed (float* pg = gates) fixed (float* ps = states) fixed (float* pc = cells) fixed (float* pw = wHh)
        fixed (float* pk = carry) fixed (int* pm = mask)
        {
            var a = new Steps
            {
                Y = pdy, Gates = pg, States = ps, Extra = pc, WHh = pw, Carry = pk, Mask = mask.IsEmpty ? null : pm,
                YWidth = yWidth, YOffset = yOffset, Batch = batch, Seq = seq, Hidden = h, Reverse = reverse,
            };
            RunHalves(&LstmBackHalf, &a);
        }
        InputGradients(dx, dWih, dBih, gates, gw, 0, gw, x, wIh, batch * seq, input);
        ColumnSums(dBhh, gates, batch * seq, gw, 0, gw);
        RecurrentWeightGradient(dWhh, gates, gw, 0, gw, states, batch, seq, h, reverse);
    }

    /// <summary>The backward time loop of rows [b0, b1): each sample's carried gradients are its own rows of the carry.</summary>
    private static void LstmBackHalf(void* state, int half)
    {
        var a = (Steps*)state;
        var (b0, b1) = Rows(a->Batch, half);
        int h = a->Hidden, seq = a->Seq, gw = 4 * h, rows = a->Batch * seq, bh = a->Batch * h;
        var dy = new ReadOnlySpan<float>(a->Y, rows * a->YWidth);
        var gates = new Span<float>(a->Gates, rows * gw);
        var cells = new ReadOnlySpan<float>(a->Extra, rows * h);
        var wHh = new ReadOnlySpan<float>(a->WHh, gw * h);
        var carry = new Span<float>(a->Carry, 3 * bh);
        var mask = a->Mask == null ? default : new ReadOnlySpan<int>(a->Mask, rows);
        var dh = carry[..bh]; var dc = carry.Slice(bh, bh); var tmp = carry.Slice(2 * bh, bh);
        for (int s = seq - 1; s >= 0; s--)
        {
            int t = a->Reverse ? seq - 1 - s : s, tp = a->Reverse ? t + 1 : t - 1;
            for (int b = b0; b < b1; b++)
            {
                int row = b * seq + t;
                var gate = gates.Slice(row * gw, gw);
                // A padded position passed the state through: its carried gradients pass back unchanged.
                if (!IsReal(mask, b, seq, t)) { gate.Clear(); continue; }
                var dhb = dh.Slice(b * h, h); var dcb = dc.Slice(b * h, h);
                Elementwise.AddInPlace(dhb, dy.Slice(row * a->YWidth + a->YOffset, h));
                var c = cells.Slice(row * h, h);
                var tanhC = tmp.Slice(b * h, h);
                TensorPrimitives.Tanh(c, tanhC);
                var cPrev = s > 0 ? cells.Slice((b * seq + tp) * h, h) : default;
                for (int j = 0; j < h; j++)
                {
                    float i = gate[j], f = gate[h + j], g = gate[2 * h + j], o = gate[3 * h + j], tc = tanhC[j], d = dhb[j];
                    float dcj = dcb[j] + d * o * (1 - tc * tc);
                    gate[j] = dcj * g * i * (1 - i);
                    gate[h + j] = s > 0 ? dcj * cPrev[j] * f * (1 - f) : 0f;
                    gate[2 * h + j] = dcj * i * (1 - g * g);
                    gate[3 * h + j] = d * tc * o * (1 - o);
                    dcb[j] = dcj * f;
                }
            }
            if (s == 0) break;
            // dh for the previous position: the gates' gradients through W_hh (a padded sample keeps its carry).
            var rowsTmp = tmp.Slice(b0 * h, (b1 - b0) * h);
            Gemm.Sgemm(false, false, b1 - b0, h, gw, 1f, gates[((b0 * seq + t) * gw)..], seq * gw, wHh, h, 0f, rowsTmp, h);
            for (int b = b0; b < b1; b++)
                if (IsReal(mask, b, seq, t)) tmp.Slice(b * h, h).CopyTo(dh.Slice(b * h, h));
        }
    }

    /// <summary>
    /// GRU forward (PyTorch's form): r, z = σ(x·W_irᵀ + b_ir + h·W_hrᵀ + b_hr), σ(…z…); n = tanh(x·W_inᵀ + b_in +
    /// r⊙(h·W_hnᵀ + b_hn)); h = (1 − z)⊙n + z⊙h. The initial state is zero. Uses carry's first 3·B·H floats.
    /// </summary>
    /// <exception cref="ArgumentException">When a buffer is too short for the sizes.</exception>
    public static void GruForward(Span<float> y, int yWidth, int yOffset, Span<float> gates, Span<float> states, Span<float> hiddenTerms,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh,
        ReadOnlySpan<int> mask, int batch, int seq, int input, int hidden, bool reverse, Span<float> carry)
    {
        int h = hidden, gw = 3 * h;
        Check("GRU", y, yWidth, yOffset, gates, states, hiddenTerms, x, wIh, wHh, bIh, bHh, mask, batch, seq, input, h, 3);
        CheckCarry("GRU", carry, batch, h);
        InputProjection(gates, x, wIh, bIh, default, batch * seq, input, gw);
        fixed (float* py = y) fixed (float* pg = gates) fixed (float* ps = states) fixed (float* pn = hiddenTerms) fixed (float* pw = wHh)
        fixed (float* pc = carry) fixed (float* pb = bHh) fixed (int* pm = mask)
        {
            var a = new Steps
            {
                Y = py, Gates = pg, States = ps, Extra = pn, WHh = pw, Carry = pc, BHh = bHh.IsEmpty ? null : pb, BHhLength = bHh.Length,
                Mask = mask.IsEmpty ? null : pm, YWidth = yWidth, YOffset = yOffset, Batch = batch, Seq = seq, Hidden = h, Reverse = reverse,
            };
            RunHalves(&GruHalf, &a);
        }
    }

    private static void GruHalf(void* state, int half)
    {
        var a = (Steps*)state;
        var (b0, b1) = Rows(a->Batch, half);
        int h = a->Hidden, seq = a->Seq, gw = 3 * h, rows = a->Batch * seq;
        var y = new Span<float>(a->Y, rows * a->YWidth);
        var gates = new Span<float>(a->Gates, rows * gw);
        var states = new Span<float>(a->States, rows * h);
        var hiddenTerms = new Span<float>(a->Extra, rows * h);
        var wHh = new ReadOnlySpan<float>(a->WHh, gw * h);
        var bHh = a->BHh == null ? default : new ReadOnlySpan<float>(a->BHh, a->BHhLength);
        var mask = a->Mask == null ? default : new ReadOnlySpan<int>(a->Mask, rows);
        // This half's rows of the carry hold h·W_hhᵀ + b_hh for the step.
        var hg = new Span<float>(a->Carry + (long)b0 * gw, (b1 - b0) * gw);
        int first = b0 * seq;
        for (int s = 0; s < seq; s++)
        {
            int t = a->Reverse ? seq - 1 - s : s, tp = a->Reverse ? t + 1 : t - 1;
            if (s > 0) Gemm.Sgemm(false, true, b1 - b0, gw, h, 1f, states[((first + tp) * h)..], seq * h, wHh, h, 0f, hg, gw);
            else hg.Clear();
            if (!bHh.IsEmpty) Elementwise.AddToEachRow(hg, hg, bHh, b1 - b0, gw);
            for (int b = b0; b < b1; b++)
            {
                int row = b * seq + t, prev = b * seq + tp;
                var gate = gates.Slice(row * gw, gw);
                var hOut = states.Slice(row * h, h);
                var hn = hiddenTerms.Slice(row * h, h);
                var output = y.Slice(row * a->YWidth + a->YOffset, h);
                if (!IsReal(mask, b, seq, t))
                {
                    if (s > 0) states.Slice(prev * h, h).CopyTo(hOut); else hOut.Clear();
                    gate.Clear(); hn.Clear(); output.Clear();
                    continue;
                }
                var hgb = hg.Slice((b - b0) * gw, gw);
                var rz = gate[..(2 * h)];
                TensorPrimitives.Add(rz, hgb[..(2 * h)], rz);
                TensorPrimitives.Sigmoid(rz, rz);
                hgb.Slice(2 * h, h).CopyTo(hn);
                var n = gate.Slice(2 * h, h);
                TensorPrimitives.FusedMultiplyAdd(gate[..h], hn, n, n);
                TensorPrimitives.Tanh(n, n);
                var z = gate.Slice(h, h);
                if (s > 0)
                {
                    // h = n + z⊙(h_prev − n)
                    TensorPrimitives.Subtract(states.Slice(prev * h, h), n, hOut);
                    TensorPrimitives.FusedMultiplyAdd(z, hOut, n, hOut);
                }
                else
                {
                    TensorPrimitives.Multiply(z, n, hOut);
                    TensorPrimitives.Subtract(n, hOut, hOut);
                }
                hOut.CopyTo(output);
            }
        }
    }

    /// <summary>
    /// GRU backward through time, as <see cref="LstmBackward"/>: the gates become their gradients and
    /// <paramref name="hiddenTerms"/> the gradient of W_hn·h + b_hn.
    /// </summary>
    public static void GruBackward(Span<float> dx, Span<float> dWih, Span<float> dWhh, Span<float> dBih, Span<float> dBhh,
        ReadOnlySpan<float> dy, int yWidth, int yOffset, Span<float> gates, ReadOnlySpan<float> states, Span<float> hiddenTerms,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<int> mask,
        int batch, int seq, int input, int hidden, bool reverse, Span<float> carry)
    {
        int h = hidden, gw = 3 * h, bh = batch * h;
        Check("GRU", dy, yWidth, yOffset, gates, states, hiddenTerms, x, wIh, wHh, default, default, mask, batch, seq, input, h, 3);
        CheckCarry("GRU", carry, batch, h);
        carry[..bh].Clear(); // dh; the second part is scratch
        fixed (float* pdy = dy) fixed (float* pg = gates) fixed (float* ps = states) fixed (float* pn = hiddenTerms) fixed (float* pw = wHh)
        fixed (float* pk = carry) fixed (int* pm = mask)
        {
            var a = new Steps
            {
                Y = pdy, Gates = pg, States = ps, Extra = pn, WHh = pw, Carry = pk, Mask = mask.IsEmpty ? null : pm,
                YWidth = yWidth, YOffset = yOffset, Batch = batch, Seq = seq, Hidden = h, Reverse = reverse,
            };
            RunHalves(&GruBackHalf, &a);
        }
        int rows = batch * seq;
        InputGradients(dx, dWih, dBih, gates, gw, 0, gw, x, wIh, rows, input);
        ColumnSums(dBhh.IsEmpty ? default : dBhh[..(2 * h)], gates, rows, gw, 0, 2 * h);
        ColumnSums(dBhh.IsEmpty ? default : dBhh.Slice(2 * h, h), hiddenTerms, rows, h, 0, h);
        RecurrentWeightGradient(dWhh.IsEmpty ? default : dWhh[..(2 * h * h)], gates, gw, 0, 2 * h, states, batch, seq, h, reverse);
        RecurrentWeightGradient(dWhh.IsEmpty ? default : dWhh[(2 * h * h)..], hiddenTerms, h, 0, h, states, batch, seq, h, reverse);
    }

    /// <summary>
    /// Weights for ONNX's LSTM/GRU: [directions, G·H, cols] in ONNX's gate order (LSTM i, o, f, c; GRU z, r, h) from
    /// PyTorch's (i, f, g, o; r, z, n). <paramref name="reverse"/> is empty for one direction.
    /// </summary>
    public static float[] OnnxWeights(bool lstm, int hidden, int cols, ReadOnlySpan<float> forward, ReadOnlySpan<float> reverse)
    {
        int[] order = lstm ? [0, 3, 1, 2] : [1, 0, 2];
        int block = hidden * cols, size = order.Length * block;
        var result = new float[(reverse.IsEmpty ? 1 : 2) * size];
        for (int d = 0; d * size < result.Length; d++)
        {
            var source = d == 0 ? forward : reverse;
            Need(lstm ? "LSTM" : "GRU", "a weight", source.Length, size);
            for (int g = 0; g < order.Length; g++) source.Slice(order[g] * block, block).CopyTo(result.AsSpan(d * size + g * block, block));
        }
        return result;
    }

    /// <summary>Biases for ONNX's LSTM/GRU: [directions, 2·G·H], each direction's input biases then its hidden ones, in ONNX's gate order.</summary>
    public static float[] OnnxBiases(bool lstm, int hidden, ReadOnlySpan<float> inputForward, ReadOnlySpan<float> inputReverse, ReadOnlySpan<float> hiddenForward, ReadOnlySpan<float> hiddenReverse)
    {
        var wb = OnnxWeights(lstm, hidden, 1, inputForward, inputReverse);
        var rb = OnnxWeights(lstm, hidden, 1, hiddenForward, hiddenReverse);
        int size = wb.Length / (inputReverse.IsEmpty ? 1 : 2);
        var result = new float[2 * wb.Length];
        for (int d = 0; d * size < wb.Length; d++)
        {
            wb.AsSpan(d * size, size).CopyTo(result.AsSpan(2 * d * size));
            rb.AsSpan(d * size, size).CopyTo(result.AsSpan((2 * d + 1) * size));
        }
        return result;
    }

    /// <summary>The GRU's backward time loop of rows [b0, b1), as <see cref="LstmBackHalf"/>.</summary>
    private static void GruBackHalf(void* state, int half)
    {
        var a = (Steps*)state;
        var (b0, b1) = Rows(a->Batch, half);
        int h = a->Hidden, seq = a->Seq, gw = 3 * h, rows = a->Batch * seq, bh = a->Batch * h;
        var dy = new ReadOnlySpan<float>(a->Y, rows * a->YWidth);
        var gates = new Span<float>(a->Gates, rows * gw);
        var states = new ReadOnlySpan<float>(a->States, rows * h);
        var hiddenTerms = new Span<float>(a->Extra, rows * h);
        var wHh = new ReadOnlySpan<float>(a->WHh, gw * h);
        var carry = new Span<float>(a->Carry, 2 * bh);
        var mask = a->Mask == null ? default : new ReadOnlySpan<int>(a->Mask, rows);
        var dh = carry[..bh]; var tmp = carry.Slice(bh, bh);
        for (int s = seq - 1; s >= 0; s--)
        {
            int t = a->Reverse ? seq - 1 - s : s, tp = a->Reverse ? t + 1 : t - 1;
            for (int b = b0; b < b1; b++)
            {
                int row = b * seq + t;
                var gate = gates.Slice(row * gw, gw);
                var hn = hiddenTerms.Slice(row * h, h);
                if (!IsReal(mask, b, seq, t)) { gate.Clear(); hn.Clear(); continue; }
                var dhb = dh.Slice(b * h, h);
                Elementwise.AddInPlace(dhb, dy.Slice(row * a->YWidth + a->YOffset, h));
                var hPrev = s > 0 ? states.Slice((b * seq + tp) * h, h) : default;
                for (int j = 0; j < h; j++)
                {
                    float r = gate[j], z = gate[h + j], n = gate[2 * h + j], d = dhb[j], previous = s > 0 ? hPrev[j] : 0f;
                    float dn = d * (1 - z) * (1 - n * n);
                    gate[j] = dn * hn[j] * r * (1 - r);
                    gate[h + j] = d * (previous - n) * z * (1 - z);
                    gate[2 * h + j] = dn;
                    hn[j] = dn * r;
                    dhb[j] = d * z;
                }
            }
            if (s == 0) break;
            // dh for the previous position: r's and z's gradients and the hidden term's through their rows of W_hh.
            var rowsTmp = tmp.Slice(b0 * h, (b1 - b0) * h);
            Gemm.Sgemm(false, false, b1 - b0, h, 2 * h, 1f, gates[((b0 * seq + t) * gw)..], seq * gw, wHh, h, 0f, rowsTmp, h);
            Gemm.Sgemm(false, false, b1 - b0, h, h, 1f, hiddenTerms[((b0 * seq + t) * h)..], seq * h, wHh[(2 * h * h)..], h, 1f, rowsTmp, h);
            for (int b = b0; b < b1; b++)
                if (IsReal(mask, b, seq, t)) Elementwise.AddInPlace(dh.Slice(b * h, h), tmp.Slice(b * h, h));
        }
    }

    /// <summary>The gates' pre-activations from the input for every position at once: x·W_ihᵀ + b_ih (+ b_hh).</summary>
    private static void InputProjection(Span<float> gates, ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh, int rows, int input, int gw)
    {
        Gemm.Sgemm(false, true, rows, gw, input, 1f, x, input, wIh, input, 0f, gates, gw);
        if (!bIh.IsEmpty) Elementwise.AddToEachRow(gates, gates, bIh, rows, gw);
        if (!bHh.IsEmpty) Elementwise.AddToEachRow(gates, gates, bHh, rows, gw);
    }

    /// <summary>dx += dG·W_ih, dW_ih += dGᵀ·x, db_ih += Σ dG over all positions (dG: the gates' gradients).</summary>
    private static void InputGradients(Span<float> dx, Span<float> dWih, Span<float> dBih, ReadOnlySpan<float> dGates, int gw, int offset, int width,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, int rows, int input)
    {
        if (!dx.IsEmpty) Gemm.Sgemm(false, false, rows, input, width, 1f, dGates[offset..], gw, wIh, input, 1f, dx, input);
        if (!dWih.IsEmpty) Gemm.Sgemm(true, false, width, input, rows, 1f, dGates[offset..], gw, x, input, 1f, dWih, input);
        ColumnSums(dBih, dGates, rows, gw, offset, width);
    }

    /// <summary>dW += Σ over samples and positions with a predecessor of dG[t]ᵀ·h[previous] (one GEMM per sample).</summary>
    private static void RecurrentWeightGradient(Span<float> dW, ReadOnlySpan<float> dGates, int gw, int offset, int width,
        ReadOnlySpan<float> states, int batch, int seq, int h, bool reverse)
    {
        if (dW.IsEmpty || seq < 2) return;
        for (int b = 0; b < batch; b++)
        {
            // Forward: positions 1..T-1 follow 0..T-2; reverse: 0..T-2 follow 1..T-1.
            int gradientStart = b * seq + (reverse ? 0 : 1), stateStart = b * seq + (reverse ? 1 : 0);
            Gemm.Sgemm(true, false, width, h, seq - 1, 1f, dGates[(gradientStart * gw + offset)..], gw, states[(stateStart * h)..], h, 1f, dW, h);
        }
    }

    /// <summary>sum[j] += Σ_rows src[row·stride + offset + j] (an empty sum does nothing).</summary>
    private static void ColumnSums(Span<float> sum, ReadOnlySpan<float> src, int rows, int stride, int offset, int width)
    {
        if (sum.IsEmpty) return;
        var d = sum[..width];
        for (int r = 0; r < rows; r++) TensorPrimitives.Add(d, src.Slice(r * stride + offset, width), d);
    }

    private static void Carry(Span<float> states, Span<float> cells, Span<float> h, Span<float> c, int prev, int hidden, bool hasPrevious)
    {
        if (hasPrevious) { states.Slice(prev * hidden, hidden).CopyTo(h); cells.Slice(prev * hidden, hidden).CopyTo(c); }
        else { h.Clear(); c.Clear(); }
    }

    private static bool IsReal(ReadOnlySpan<int> mask, int b, int seq, int t) => mask.IsEmpty || mask[b * seq + t] != 0;

    private static void Check(string layer, ReadOnlySpan<float> y, int yWidth, int yOffset, ReadOnlySpan<float> gates, ReadOnlySpan<float> states, ReadOnlySpan<float> extra,
        ReadOnlySpan<float> x, ReadOnlySpan<float> wIh, ReadOnlySpan<float> wHh, ReadOnlySpan<float> bIh, ReadOnlySpan<float> bHh,
        ReadOnlySpan<int> mask, int batch, int seq, int input, int hidden, int gateCount)
    {
        if (batch <= 0 || seq <= 0 || input <= 0 || hidden <= 0)
            throw new ArgumentException($"{layer}: batch {batch}, sequence {seq}, input {input} and hidden {hidden} must be positive.");
        long rows = (long)batch * seq, gw = (long)gateCount * hidden;
        if (yOffset < 0 || yOffset + hidden > yWidth) throw new ArgumentException($"{layer}: columns [{yOffset}, {yOffset + hidden}) do not fit an output {yWidth} wide.");
        Need(layer, "the output", y.Length, rows * yWidth);
        Need(layer, "the gates buffer", gates.Length, rows * gw);
        Need(layer, "the states buffer", states.Length, rows * hidden);
        Need(layer, gateCount == 4 ? "the cells buffer" : "the hidden-terms buffer", extra.Length, rows * hidden);
        Need(layer, "the input", x.Length, rows * input);
        Need(layer, "weight_ih", wIh.Length, gw * input);
        Need(layer, "weight_hh", wHh.Length, gw * hidden);
        if (!bIh.IsEmpty) Need(layer, "bias_ih", bIh.Length, gw);
        if (!bHh.IsEmpty) Need(layer, "bias_hh", bHh.Length, gw);
        if (!mask.IsEmpty) Need(layer, "the mask", mask.Length, rows);
    }

    private static void CheckCarry(string layer, ReadOnlySpan<float> carry, int batch, int hidden) => Need(layer, "the carry buffer", carry.Length, CarrySize(batch, hidden));

    private static void Need(string layer, string what, int have, long need)
    {
        if (have < need) throw new ArgumentException($"{layer}: {what} is {have} values long; {need} needed.");
    }

    /// <summary>Definition loops, generic for double-precision tests: each position's gates computed from scratch.</summary>
    public static class Reference
    {
        /// <summary>y[b, t, offset..offset+H) of one LSTM layer in one direction (PyTorch's equations; padding keeps the state and outputs zeros).</summary>
        public static void LstmForward<T>(Span<T> y, int yWidth, int yOffset, ReadOnlySpan<T> x, ReadOnlySpan<T> wIh, ReadOnlySpan<T> wHh, ReadOnlySpan<T> bIh, ReadOnlySpan<T> bHh,
            ReadOnlySpan<int> mask, int batch, int seq, int input, int hidden, bool reverse) where T : IFloatingPointIeee754<T>
        {
            var (hs, cs, gs) = (new T[hidden], new T[hidden], new T[4 * hidden]);
            for (int b = 0; b < batch; b++)
            {
                Array.Clear(hs); Array.Clear(cs);
                for (int s = 0; s < seq; s++)
                {
                    int t = reverse ? seq - 1 - s : s;
                    var output = y.Slice((b * seq + t) * yWidth + yOffset, hidden);
                    if (!IsReal(mask, b, seq, t)) { output.Clear(); continue; }
                    Preactivations(gs, x.Slice((b * seq + t) * input, input), hs, wIh, wHh, bIh, bHh, input, hidden);
                    for (int j = 0; j < hidden; j++)
                    {
                        T i = Sigmoid(gs[j]), f = Sigmoid(gs[hidden + j]), g = T.Tanh(gs[2 * hidden + j]), o = Sigmoid(gs[3 * hidden + j]);
                        cs[j] = f * cs[j] + i * g;
                        gs[j] = o * T.Tanh(cs[j]); // h, kept apart until every j is done
                    }
                    for (int j = 0; j < hidden; j++) hs[j] = gs[j];
                    hs.AsSpan().CopyTo(output);
                }
            }
        }

        /// <summary>As <see cref="LstmForward{T}"/> for the GRU (PyTorch's equations).</summary>
        public static void GruForward<T>(Span<T> y, int yWidth, int yOffset, ReadOnlySpan<T> x, ReadOnlySpan<T> wIh, ReadOnlySpan<T> wHh, ReadOnlySpan<T> bIh, ReadOnlySpan<T> bHh,
            ReadOnlySpan<int> mask, int batch, int seq, int input, int hidden, bool reverse) where T : IFloatingPointIeee754<T>
        {
            var (hs, xi, hh) = (new T[hidden], new T[3 * hidden], new T[3 * hidden]);
            for (int b = 0; b < batch; b++)
            {
                Array.Clear(hs);
                for (int s = 0; s < seq; s++)
                {
                    int t = reverse ? seq - 1 - s : s;
                    var output = y.Slice((b * seq + t) * yWidth + yOffset, hidden);
                    if (!IsReal(mask, b, seq, t)) { output.Clear(); continue; }
                    MatVec(xi, wIh, x.Slice((b * seq + t) * input, input), bIh, 3 * hidden, input);
                    MatVec(hh, wHh, hs, bHh, 3 * hidden, hidden);
                    for (int j = 0; j < hidden; j++)
                    {
                        T r = Sigmoid(xi[j] + hh[j]), z = Sigmoid(xi[hidden + j] + hh[hidden + j]);
                        T n = T.Tanh(xi[2 * hidden + j] + r * hh[2 * hidden + j]);
                        hs[j] = (T.One - z) * n + z * hs[j]; // hh holds what the old state contributes, so updating in place is safe
                    }
                    hs.AsSpan().CopyTo(output);
                }
            }
        }

        private static void Preactivations<T>(T[] gs, ReadOnlySpan<T> x, T[] h, ReadOnlySpan<T> wIh, ReadOnlySpan<T> wHh, ReadOnlySpan<T> bIh, ReadOnlySpan<T> bHh, int input, int hidden)
            where T : IFloatingPointIeee754<T>
        {
            MatVec(gs, wIh, x, bIh, 4 * hidden, input);
            var recurrent = new T[4 * hidden];
            MatVec(recurrent, wHh, h, bHh, 4 * hidden, hidden);
            for (int k = 0; k < gs.Length; k++) gs[k] += recurrent[k];
        }

        private static void MatVec<T>(Span<T> y, ReadOnlySpan<T> w, ReadOnlySpan<T> x, ReadOnlySpan<T> bias, int rows, int cols) where T : IFloatingPointIeee754<T>
        {
            for (int r = 0; r < rows; r++)
            {
                T s = bias.IsEmpty ? T.Zero : bias[r];
                for (int k = 0; k < cols; k++) s += w[r * cols + k] * x[k];
                y[r] = s;
            }
        }

        private static T Sigmoid<T>(T v) where T : IFloatingPointIeee754<T> => T.One / (T.One + T.Exp(-v));
    }
}
