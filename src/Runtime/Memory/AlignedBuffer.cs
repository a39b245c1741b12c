using System.Runtime.InteropServices;

namespace Compiled.Nets;

/// <summary>
/// A zero-initialised, 64-byte aligned block of floats outside the GC heap, so SIMD loads never split a cache line
/// and the block never moves. One per parameter store / workspace: kernels see it only as spans.
/// </summary>
public sealed unsafe class AlignedBuffer : IDisposable
{
    private float* _ptr;

    /// <summary>Allocates <paramref name="length"/> zeroed floats aligned to 64 bytes.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="length"/> is negative or beyond <see cref="int.MaxValue"/>.</exception>
    public AlignedBuffer(long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, int.MaxValue);
        Length = (int)length;
        nuint bytes = (nuint)Math.Max(1, length) * sizeof(float);
        _ptr = (float*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_ptr, bytes);
        if (length > 0) GC.AddMemoryPressure((long)bytes);
        long live = Interlocked.Add(ref s_liveBytes, (long)bytes);
        for (long peak = Interlocked.Read(ref s_peakBytes); live > peak; peak = Interlocked.Read(ref s_peakBytes))
            if (Interlocked.CompareExchange(ref s_peakBytes, live, peak) == peak) break;
    }

    private static long s_liveBytes, s_peakBytes;

    /// <summary>The bytes all aligned buffers of this process hold now (parameters, gradients, workspaces): what the
    /// generated memory figures (ParameterBytes, WorkspaceBytes…) predict, measured.</summary>
    public static long LiveBytes => Interlocked.Read(ref s_liveBytes);

    /// <summary>The most <see cref="LiveBytes"/> has been since the start or the last <see cref="ResetPeakBytes"/>.</summary>
    public static long PeakBytes => Interlocked.Read(ref s_peakBytes);

    /// <summary>Starts measuring <see cref="PeakBytes"/> again from what is live now.</summary>
    public static void ResetPeakBytes() => Interlocked.Exchange(ref s_peakBytes, LiveBytes);

    /// <summary>Number of floats.</summary>
    public int Length { get; }

    /// <summary>The whole buffer.</summary>
    public Span<float> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_ptr == null, this);
            return new Span<float>(_ptr, Length);
        }
    }

    /// <summary>A slice of the buffer.</summary>
    public Span<float> Slice(int offset, int length) => Span.Slice(offset, length);

    /// <summary>The raw aligned pointer (valid until disposed).</summary>
    public float* Pointer => _ptr;

    /// <summary>Frees the memory.</summary>
    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~AlignedBuffer() => Free();

    private void Free()
    {
        if (_ptr == null) return;
        NativeMemory.AlignedFree(_ptr);
        _ptr = null;
        if (Length > 0) GC.RemoveMemoryPressure((long)Length * sizeof(float));
        Interlocked.Add(ref s_liveBytes, -(long)Math.Max(1, Length) * sizeof(float));
    }
}
