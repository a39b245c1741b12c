namespace Compiled.Nets.Gpu;

/// <summary>
/// The device could not hold what a call asked for (PyTorch's <c>torch.OutOfMemoryError</c>): the message says how
/// much was asked, for what, and how much the device had free; nothing the call held before was lost, so a smaller
/// batch can follow.
/// </summary>
public sealed class DeviceMemoryException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was asked for and what the device had.</param>
    /// <param name="requestedBytes">Bytes asked for.</param>
    /// <param name="freeBytes">Bytes the device had free, where it can say (CUDA), else null.</param>
    /// <param name="inner">The driver's own error, if it refused.</param>
    public DeviceMemoryException(string message, long requestedBytes, long? freeBytes, Exception? inner = null) : base(message, inner)
    {
        RequestedBytes = requestedBytes;
        FreeBytes = freeBytes;
    }

    /// <summary>Bytes asked for.</summary>
    public long RequestedBytes { get; }

    /// <summary>Bytes the device had free, where it can say (CUDA), else null.</summary>
    public long? FreeBytes { get; }

    /// <summary>Bytes as the messages show them.</summary>
    internal static string Size(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):0.00} GiB" : $"{bytes / (double)(1L << 20):0.0} MiB";
}
