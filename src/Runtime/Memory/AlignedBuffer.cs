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
    }

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
    }
}
