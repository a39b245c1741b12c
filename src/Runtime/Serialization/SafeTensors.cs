using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Compiled.Nets.Serialization;

/// <summary>Element types of the safetensors format that this reader/writer understands.</summary>
public enum SafeTensorDType { F32, F16, BF16, F64, I64, I32, U8 }

/// <summary>One tensor of a safetensors file: name, dtype, shape and raw little-endian bytes.</summary>
public sealed class SafeTensor
{
    // A tensor read from a file is a view of the file's bytes; Data copies them out only when asked.
    private readonly ReadOnlyMemory<byte> _bytes;
    private byte[]? _data;

    /// <summary>A tensor over <paramref name="data"/> (not copied).</summary>
    public SafeTensor(string name, SafeTensorDType dtype, int[] shape, byte[] data) : this(name, dtype, shape, (ReadOnlyMemory<byte>)data) => _data = data;

    internal SafeTensor(string name, SafeTensorDType dtype, int[] shape, ReadOnlyMemory<byte> bytes)
    {
        Name = name; DType = dtype; Shape = shape; _bytes = bytes;
    }

    /// <summary>Tensor name (a state-dict key).</summary>
    public string Name { get; }
    /// <summary>Element type.</summary>
    public SafeTensorDType DType { get; }
    /// <summary>Shape.</summary>
    public int[] Shape { get; }
    /// <summary>Raw bytes.</summary>
    public byte[] Data => _data ??= _bytes.ToArray();
    /// <summary>The raw bytes without a copy.</summary>
    internal ReadOnlySpan<byte> Bytes => _data ?? _bytes.Span;
    internal ReadOnlyMemory<byte> Memory => _data ?? _bytes;
    /// <summary>Number of elements.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>A float32 tensor from values.</summary>
    public static SafeTensor FromFloats(string name, int[] shape, ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        return new SafeTensor(name, SafeTensorDType.F32, shape, bytes);
    }

    /// <summary>Converts the values to float (F32, F16, BF16, F64, I64, I32, U8).</summary>
    public void CopyTo(Span<float> destination)
    {
        if (destination.Length != Count) throw new ArgumentException($"Tensor '{Name}' has {Count} elements; the destination holds {destination.Length}.");
        var d = Bytes;
        // The common case, float32 on a little-endian machine, is a block copy.
        if (DType == SafeTensorDType.F32 && BitConverter.IsLittleEndian) { System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(d).CopyTo(destination); return; }
        for (int i = 0; i < destination.Length; i++)
            destination[i] = DType switch
            {
                SafeTensorDType.F32 => BinaryPrimitives.ReadSingleLittleEndian(d[(i * 4)..]),
                SafeTensorDType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(d[(i * 2)..]),
                SafeTensorDType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(d[(i * 2)..]) << 16),
                SafeTensorDType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(d[(i * 8)..]),
                SafeTensorDType.I64 => BinaryPrimitives.ReadInt64LittleEndian(d[(i * 8)..]),
                SafeTensorDType.I32 => BinaryPrimitives.ReadInt32LittleEndian(d[(i * 4)..]),
                _ => d[i],
            };
    }

    /// <summary>The values as a new float array.</summary>
    public float[] ToFloats() { var f = new float[Count]; CopyTo(f); return f; }

    /// <summary>This tensor as F32: itself when it already is, else a converted copy with the same name and shape.</summary>
    public SafeTensor ToFloat32() => DType == SafeTensorDType.F32 ? this : FromFloats(Name, Shape, ToFloats());

    internal static int Size(SafeTensorDType t) => t switch
    {
        SafeTensorDType.F64 or SafeTensorDType.I64 => 8,
        SafeTensorDType.F32 or SafeTensorDType.I32 => 4,
        SafeTensorDType.F16 or SafeTensorDType.BF16 => 2,
        _ => 1,
    };
}

/// <summary>
/// Reads and writes the safetensors format (8-byte little-endian header length, JSON header, packed data). The
/// reader validates everything before touching data: bounded header, well-formed JSON, known dtypes, shapes that
/// match byte sizes, offsets in range, ordered and covering the buffer without overlap, no duplicate names.
/// </summary>
public static class SafeTensorsFile
{
    /// <summary>The largest header accepted (100 MB), so a corrupt length cannot make the reader allocate wildly.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>Reads a file.</summary>
    /// <exception cref="InvalidDataException">Names the file and what is wrong.</exception>
    public static (IReadOnlyList<SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path)
    {
        byte[] bytes = BoundedFile.Read(path, long.MaxValue, "a safetensors file");
        try { return Parse((ReadOnlyMemory<byte>)bytes); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
    }

    /// <summary>Parses safetensors bytes.</summary>
    /// <exception cref="InvalidDataException">When the content is malformed.</exception>
    public static (IReadOnlyList<SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(ReadOnlySpan<byte> bytes) => Parse((ReadOnlyMemory<byte>)bytes.ToArray());

    /// <summary>Parses safetensors bytes; the tensors are views of <paramref name="memory"/> (no copies).</summary>
    internal static (IReadOnlyList<SafeTensor> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(ReadOnlyMemory<byte> memory)
    {
        var bytes = memory.Span;
        if (bytes.Length < 8) throw new InvalidDataException($"truncated: {bytes.Length} bytes, the 8-byte header length is missing.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLen > MaxHeaderBytes) throw new InvalidDataException($"header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit.");
        if ((long)headerLen > bytes.Length - 8) throw new InvalidDataException($"truncated: header of {headerLen} bytes but only {bytes.Length - 8} follow.");
        var header = bytes.Slice(8, (int)headerLen);
        // JsonDocument defers UTF-8 validation of strings until they are read; reject bad bytes up front.
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw new InvalidDataException("the header is not valid UTF-8.");
        var data = bytes[(8 + (int)headerLen)..];
        var entries = new List<(string Name, SafeTensorDType DType, int[] Shape, long Begin, long End)>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException("the header is not a JSON object.");
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!names.Add(prop.Name)) throw new InvalidDataException($"duplicate entry '{prop.Name}'.");
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException("__metadata__ is not an object.");
                    foreach (var m in prop.Value.EnumerateObject())
                        if (!metadata.TryAdd(m.Name, m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : throw new InvalidDataException($"metadata '{m.Name}' is not a string.")))
                            throw new InvalidDataException($"duplicate metadata entry '{m.Name}'.");
                    continue;
                }
                var t = prop.Value;
                if (t.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"tensor '{prop.Name}' is not an object.");
                string dtypeText = t.TryGetProperty("dtype", out var dt) && dt.ValueKind == JsonValueKind.String ? dt.GetString()! : throw new InvalidDataException($"tensor '{prop.Name}' has no dtype.");
                // The exact name: Enum.TryParse would also take numbers, padding and flag lists ("F16,BF16").
                var dtype = dtypeText switch
                {
                    "F32" => SafeTensorDType.F32, "F16" => SafeTensorDType.F16, "BF16" => SafeTensorDType.BF16, "F64" => SafeTensorDType.F64,
                    "I64" => SafeTensorDType.I64, "I32" => SafeTensorDType.I32, "U8" => SafeTensorDType.U8,
                    _ => throw new InvalidDataException($"tensor '{prop.Name}' has unsupported dtype '{dtypeText}'."),
                };
                if (!t.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"tensor '{prop.Name}' has no shape.");
                var shape = sh.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out int v) && v >= 0 ? v
                    : throw new InvalidDataException($"tensor '{prop.Name}' has an invalid dimension {d}.")).ToArray();
                if (!t.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
                    throw new InvalidDataException($"tensor '{prop.Name}' needs data_offsets [begin, end].");
                long begin = off[0].ValueKind == JsonValueKind.Number && off[0].TryGetInt64(out long b) ? b : -1;
                long end = off[1].ValueKind == JsonValueKind.Number && off[1].TryGetInt64(out long e) ? e : -1;
                if (begin < 0 || end < begin || end > data.Length)
                    throw new InvalidDataException($"tensor '{prop.Name}' has data_offsets [{off[0]}, {off[1]}] outside the {data.Length}-byte buffer.");
                long count = 1;
                foreach (int d in shape) count = checked(count * d);
                long bytesNeeded = checked(count * SafeTensor.Size(dtype));
                if (bytesNeeded != end - begin)
                    throw new InvalidDataException($"tensor '{prop.Name}' of shape [{string.Join(", ", shape)}] and dtype {dtype} needs {bytesNeeded} bytes, but its offsets span {end - begin}.");
                entries.Add((prop.Name, dtype, shape, begin, end));
            }
        }
        catch (JsonException e) { throw new InvalidDataException($"the header is not valid JSON ({e.Message}).", e); }
        catch (OverflowException) { throw new InvalidDataException("a tensor's size in bytes overflows 64 bits."); }
        // A string the JSON reader cannot turn into UTF-16 (an escaped lone surrogate such as "\ud800").
        catch (InvalidOperationException e) { throw new InvalidDataException($"the header holds a string that is not valid Unicode ({e.Message}).", e); }

        // Offsets must tile the data buffer exactly: ordered, no gaps, no overlap.
        long expected = 0;
        foreach (var en in entries.OrderBy(x => x.Begin).ThenBy(x => x.End))
        {
            if (en.Begin != expected) throw new InvalidDataException($"tensor '{en.Name}' starts at byte {en.Begin}, expected {expected} (overlap or gap).");
            expected = en.End;
        }
        if (expected != data.Length) throw new InvalidDataException($"the tensors cover {expected} bytes but the buffer has {data.Length}.");
        var tensors = new List<SafeTensor>(entries.Count);
        var dataMemory = memory[(8 + (int)headerLen)..];
        foreach (var en in entries) tensors.Add(new SafeTensor(en.Name, en.DType, en.Shape, dataMemory.Slice((int)en.Begin, (int)(en.End - en.Begin))));
        return (tensors, metadata);
    }

    /// <summary>Serialises tensors (in the given order) and metadata.</summary>
    public static byte[] Serialize(IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var kv in metadata) w.WriteString(kv.Key, kv.Value);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                if (t.Count * SafeTensor.Size(t.DType) != t.Bytes.Length) throw new ArgumentException($"Tensor '{t.Name}': {t.Bytes.Length} bytes do not match its shape and dtype.");
                w.WriteStartObject(t.Name);
                w.WriteString("dtype", t.DType.ToString());
                w.WriteStartArray("shape"); foreach (int d in t.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteStartArray("data_offsets"); w.WriteNumberValue(offset); w.WriteNumberValue(offset + t.Bytes.Length); w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes.Length;
            }
            w.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 bytes, as the reference implementation does.
        var header = ms.ToArray();
        int padded = (header.Length + 7) / 8 * 8;
        var result = new byte[8 + padded + list.Sum(t => (long)t.Bytes.Length)];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        header.CopyTo(result, 8);
        result.AsSpan(8 + header.Length, padded - header.Length).Fill((byte)' ');
        long pos = 8 + padded;
        foreach (var t in list) { t.Bytes.CopyTo(result.AsSpan((int)pos)); pos += t.Bytes.Length; }
        return result;
    }

    /// <summary>Writes a file atomically: a temporary file in the same folder, flushed to disk, then renamed over the target.</summary>
    public static void Write(string path, IEnumerable<SafeTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.Write(path, Serialize(tensors, metadata));
}

/// <summary>Crash-safe file replacement: readers see either the old file or the complete new one.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Deletes the temporary files that writes interrupted by a crash or a kill left in <paramref name="directory"/>
    /// (<c>.NAME.PID.GUID.tmp</c> of a process that no longer runs); files of a live writer are kept.
    /// </summary>
    /// <returns>How many were deleted.</returns>
    public static int RemoveStaleTemporaries(string directory)
    {
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(directory, ".*.tmp"))
        {
            var parts = Path.GetFileName(file).Split('.');
            // "", NAME…, PID, GUID, "tmp"
            if (parts.Length < 5 || parts[^2].Length != 32 || !int.TryParse(parts[^3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)) continue;
            if (pid == Environment.ProcessId || IsRunning(pid)) continue;
            try { File.Delete(file); removed++; }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    private static bool IsRunning(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Writes <paramref name="bytes"/> to a temporary sibling, fsyncs it, and renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, "." + Path.GetFileName(full) + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N") + ".tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                fs.Write(bytes);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }
}
