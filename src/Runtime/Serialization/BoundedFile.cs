using System.Buffers.Binary;
using System.IO.Compression;

namespace Compiled.Nets.Serialization;

/// <summary>
/// Reading untrusted files with memory bounded by what they hold: regular files only (a device such as /dev/zero
/// would never end, a FIFO would block), a size limit checked before reading, and gzip decompressed no further than
/// the caller's limit, with its trailer checked. Every failure is an <see cref="InvalidDataException"/> naming the file,
/// except a missing file (<see cref="FileNotFoundException"/>).
/// </summary>
public static class BoundedFile
{
    /// <summary>
    /// The bytes of a regular file of at most <paramref name="limit"/> bytes. Devices, pipes and /proc files report
    /// a size of 0 and are refused before opening, as is a file larger than the limit or one that grows while read.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="limit">The most bytes accepted.</param>
    /// <param name="what">What the file is, for messages ("a vocabulary").</param>
    public static byte[] Read(string path, long limit, string what)
    {
        FileInfo info;
        try
        {
            info = new FileInfo(path);
            if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? throw new InvalidDataException($"{path} is a link to a directory.");
        }
        catch (IOException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        // A missing file is not bad input but a wrong path: the one failure that is not an InvalidDataException.
        if (!info.Exists) throw new FileNotFoundException($"{path} does not exist (or is a broken link).", path);
        if (info.Length == 0) throw new InvalidDataException($"{path} is empty or not a regular file.");
        limit = Math.Min(limit, Array.MaxLength);
        if (info.Length > limit) throw new InvalidDataException($"{path} has {info.Length} bytes, more than {what}'s limit of {limit}.");
        try
        {
            using var stream = new FileStream(info.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            // Exactly the size stat gave (no zeroing, no second copy), then one byte more to see whether it grew.
            var buffer = GC.AllocateUninitializedArray<byte>((int)info.Length);
            int total = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
            if (total < buffer.Length) throw new InvalidDataException($"{path} shrank while being read ({total} of {buffer.Length} bytes).");
            Span<byte> probe = stackalloc byte[1];
            if (stream.Read(probe) > 0) throw new InvalidDataException($"{path} grew while being read.");
            return buffer;
        }
        catch (IOException e) { throw new InvalidDataException($"{path} cannot be read: {e.Message}", e); }
        catch (UnauthorizedAccessException e) { throw new InvalidDataException($"{path} cannot be read: {e.Message}", e); }
    }

    /// <summary>True when <paramref name="bytes"/> start with the gzip magic.</summary>
    public static bool IsGzip(ReadOnlySpan<byte> bytes) => bytes.Length >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;

    /// <summary>The first <paramref name="count"/> decompressed bytes of a gzip stream (fewer if it is shorter): a header to size the rest by.</summary>
    public static byte[] GunzipHead(byte[] gzip, int count, string path)
    {
        try
        {
            using var gz = new GZipStream(new MemoryStream(gzip, writable: false), CompressionMode.Decompress);
            var head = new byte[count];
            int n = gz.ReadAtLeast(head, count, throwOnEndOfStream: false);
            return head[..n];
        }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path} is a corrupt gzip file: {e.Message}", e); }
        catch (IOException e) { throw new InvalidDataException($"{path} is a corrupt gzip file: {e.Message}", e); }
    }

    /// <summary>
    /// Decompresses a single-member gzip stream, stopping with an error once more than <paramref name="limit"/> bytes
    /// come out (a small bomb cannot take more memory than the caller allows), and checks the trailer: the CRC-32
    /// and length of what came out (a stream cut before its trailer is refused).
    /// </summary>
    public static byte[] Gunzip(byte[] gzip, long limit, string path)
    {
        limit = Math.Min(limit, Array.MaxLength);
        if (gzip.Length < 18) throw new InvalidDataException($"{path} is a truncated gzip file ({gzip.Length} bytes).");
        using var output = new MemoryStream();
        try
        {
            using var gz = new GZipStream(new MemoryStream(gzip, writable: false), CompressionMode.Decompress);
            var chunk = new byte[81920];
            int n;
            while ((n = gz.Read(chunk, 0, chunk.Length)) > 0)
            {
                if (output.Length + n > limit) throw new InvalidDataException($"{path} decompresses to more than {limit} bytes, more than its header declares.");
                output.Write(chunk, 0, n);
            }
        }
        catch (InvalidDataException e) when (!e.Message.StartsWith(path, StringComparison.Ordinal))
        { throw new InvalidDataException($"{path} is a corrupt gzip file: {e.Message}", e); }
        catch (IOException e) { throw new InvalidDataException($"{path} is a corrupt gzip file: {e.Message}", e); }
        var data = output.ToArray();
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(gzip.AsSpan(gzip.Length - 8)), size = BinaryPrimitives.ReadUInt32LittleEndian(gzip.AsSpan(gzip.Length - 4));
        if (size != (uint)data.Length || crc != System.IO.Hashing.Crc32.HashToUInt32(data))
            throw new InvalidDataException($"{path} is a truncated or corrupt gzip file: its trailer does not match the {data.Length} bytes it decompresses to.");
        return data;
    }
}
