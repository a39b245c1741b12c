using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

// Sequences on the device: [B, T, D] values laid out as the CPU runtime lays them out (T this batch's length), the
// attention mask [B, T] of 0/1 as Hugging Face's tokenizers give it. The position/token-type sums broadcast a table row
// over a block; their tables' gradients are column sums; the [CLS] pick is a Narrow.
/// <summary>Which columns a column sum adds: rows, columns, the row stride and the first column; with several blocks
/// (one per grid row), how far apart the blocks of x and their sums lie.</summary>
internal struct ColumnArgs
{
    public int Rows, Cols, Stride, Offset;
    public long Block, SumSpacing;
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>? _addBroadcast;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ColumnArgs>? _columnSums;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>? _sequenceMean, _sequenceMeanBackward;

    /// <summary>y[i] = x[i] + row[i mod block] over <paramref name="n"/> elements (a bias over rows, position embeddings
    /// over each sample's [T, D] block); y may be x.</summary>
    public void AddBroadcast(ArrayView<float> y, ArrayView<float> x, ArrayView<float> row, long n, int block)
    {
        if (n == 0) return;
        Need(y, n, nameof(y)); Need(x, n, nameof(x)); Need(row, Math.Min(n, block), nameof(row));
        _addBroadcast ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int>(AddBroadcastKernel);
        Launched(); _addBroadcast(checked((int)n), y, x, row, block);
    }

    private static void AddBroadcastKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<float> row, int block)
    {
        int i = index;
        y[i] = x[i] + row[i % block];
    }

    /// <summary>sums[c] += Σ_r x[r·cols + c] (a bias's or an added table's gradient), summed in a fixed order (see
    /// <see cref="ColumnLaunch"/>).</summary>
    public void AddColumnSums(ArrayView<float> sums, ArrayView<float> x, int rows, int cols) => AddColumnSums(sums, x, rows, cols, cols, 0);

    /// <summary>As <see cref="AddColumnSums(ArrayView{float}, ArrayView{float}, int, int)"/> over columns [offset, offset + cols)
    /// of rows <paramref name="stride"/> apart.</summary>
    internal void AddColumnSums(ArrayView<float> sums, ArrayView<float> x, int rows, int cols, int stride, int offset)
    {
        if (rows == 0 || cols == 0) return;
        Need(sums, cols, nameof(sums)); Need(x, (long)(rows - 1) * stride + offset + cols, nameof(x));
        _columnSums ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ColumnArgs>(ColumnSumsKernel);
        Launched(); _columnSums(ColumnLaunch(rows, cols), sums, x, new ColumnArgs { Rows = rows, Cols = cols, Stride = stride, Offset = offset });
    }

    /// <summary>sums_p[c] += Σ_r x_p[r·cols + c] for <paramref name="count"/> blocks of [rows, cols] one after another
    /// in x, their sums <paramref name="sumSpacing"/> floats apart (the biases of Linears that read one input), in one
    /// launch: a grid row per block.</summary>
    internal void AddColumnSums(ArrayView<float> sums, long sumSpacing, ArrayView<float> x, int count, int rows, int cols)
    {
        if (count == 0 || rows == 0 || cols == 0) return;
        long block = (long)rows * cols;
        Need(sums, (count - 1) * sumSpacing + cols, nameof(sums)); Need(x, count * block, nameof(x));
        _columnSums ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ColumnArgs>(ColumnSumsKernel);
        var one = ColumnLaunch(rows, cols);
        var config = new KernelConfig(new Index2D(one.GridDim.X, count), new Index2D(one.GroupDim.X, one.GroupDim.Y));
        Launched(); _columnSums(config, sums, x, new ColumnArgs { Rows = rows, Cols = cols, Stride = cols, Block = block, SumSpacing = sumSpacing });
    }

    /// <summary>
    /// A column sum's launch: a group per strip of columns, its threads X across the strip's columns and Y in slices, slice
    /// k adding rows k, k + slices, … (a strip is 8 columns on a GPU, one 32-byte sector of a row, so even a layer of
    /// 768 columns gives a GPU 96 groups of up to 1024 threads; a warp on the CPU accelerator); the slices' partial sums
    /// then meet in <see cref="SliceSum"/>, added in slice order — no atomics, so the sums do not vary from run to run.
    /// The generated backward of a chain with a bias launches this way too.
    /// </summary>
    public KernelConfig ColumnLaunch(int rows, int cols)
    {
        int width = _device.LaunchesLikeCuda ? 8 : Accelerator.WarpSize;
        int slices = Math.Max(1, Math.Min(Accelerator.MaxNumThreadsPerGroup, _device.LaunchesLikeCuda ? MostThreads : 16) / width);
        while (slices > 1 && slices / 2 >= rows) slices /= 2;
        return new KernelConfig(new Index2D(Groups(cols, width), 1), new Index2D(width, slices));
    }

    private static void ColumnSumsKernel(ArrayView<float> sums, ArrayView<float> x, ColumnArgs a)
    {
        int c = Grid.IdxX * Group.DimX + Group.IdxX;
        long first = Grid.IdxY * a.Block + a.Offset + c;
        float s = 0f;
        if (c < a.Cols)
            for (int r = Group.IdxY; r < a.Rows; r += Group.DimY) s += x[first + (long)r * a.Stride];
        s = SliceSum(s);
        if (Group.IdxY == 0 && c < a.Cols) sums[Grid.IdxY * a.SumSpacing + c] += s;
    }

    /// <summary>y[b, :] = Σₜ mask[b,t]·x[b,t,:], divided by Σₜ mask[b,t] for the mean (MeanOverSequence, Mean/Sum over
    /// T; a sample with no real position gives zeros, as on the CPU); one thread per output.</summary>
    public void SequenceMeanForward(ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, int batch, int seq, int dim) =>
        SequenceReduce(y, x, mask, batch, seq, dim, mean: true);

    /// <summary>dx[b,t,:] += mask[b,t]·dy[b,:] / Σₜ mask[b,t]; one thread per input element.</summary>
    public void SequenceMeanBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> mask, int batch, int seq, int dim) =>
        SequenceReduceBackward(dx, dy, mask, batch, seq, dim, mean: true);

    /// <summary>y[b, :] = Σₜ mask[b,t]·x[b,t,:] (<c>x.Sum(0)</c> over T: padding adds nothing).</summary>
    public void SequenceSumForward(ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, int batch, int seq, int dim) =>
        SequenceReduce(y, x, mask, batch, seq, dim, mean: false);

    /// <summary>dx[b,t,:] += mask[b,t]·dy[b,:].</summary>
    public void SequenceSumBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> mask, int batch, int seq, int dim) =>
        SequenceReduceBackward(dx, dy, mask, batch, seq, dim, mean: false);

    private void SequenceReduce(ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, int batch, int seq, int dim, bool mean)
    {
        Need(y, (long)batch * dim, nameof(y)); Need(x, (long)batch * seq * dim, nameof(x)); Need(mask, (long)batch * seq, nameof(mask));
        _sequenceMean ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(SequenceMeanKernel);
        Launched(); _sequenceMean(checked(batch * dim), y, x, mask, seq, dim, mean ? 1 : 0);
    }

    private void SequenceReduceBackward(ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> mask, int batch, int seq, int dim, bool mean)
    {
        Need(dy, (long)batch * dim, nameof(dy)); Need(dx, (long)batch * seq * dim, nameof(dx)); Need(mask, (long)batch * seq, nameof(mask));
        _sequenceMeanBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int, int>(SequenceMeanBackwardKernel);
        Launched(); _sequenceMeanBackward(checked(batch * seq * dim), dx, dy, mask, seq, dim, mean ? 1 : 0);
    }

    private static int RealPositions(ArrayView<int> mask, int b, int seq)
    {
        int count = 0;
        for (int t = 0; t < seq; t++) if (mask[b * seq + t] != 0) count++;
        return count;
    }

    private static void SequenceMeanKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, ArrayView<int> mask, int seq, int dim, int mean)
    {
        int at = index;
        int b = at / dim, i = at % dim;
        float sum = 0f;
        for (int t = 0; t < seq; t++) if (mask[b * seq + t] != 0) sum += x[((long)b * seq + t) * dim + i];
        if (mean == 0) { y[at] = sum; return; }
        int count = RealPositions(mask, b, seq);
        y[at] = count == 0 ? 0f : sum * (1f / count);
    }

    private static void SequenceMeanBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, ArrayView<int> mask, int seq, int dim, int mean)
    {
        int at = index;
        int i = at % dim, bt = at / dim, b = bt / seq;
        if (mask[bt] == 0) return;
        dx[at] += mean == 0 ? dy[(long)b * dim + i] : dy[(long)b * dim + i] * (1f / RealPositions(mask, b, seq));
    }
}
