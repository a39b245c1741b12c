using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Compiled.Nets.Runtime.Tests.Serialization;

/// <summary>A storage as torch.save writes it: <c>data/&lt;Key&gt;</c> holding <paramref name="Numel"/> elements of <paramref name="Type"/>.</summary>
internal sealed record TorchStorage(string Key, string Type, byte[] Bytes, long Numel)
{
    public static TorchStorage Floats(string key, ReadOnlySpan<float> values)
    {
        var b = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(b.AsSpan(i * 4), values[i]);
        return new TorchStorage(key, "FloatStorage", b, values.Length);
    }
}

/// <summary>A tensor as <c>_rebuild_tensor_v2</c> arguments: a strided view of a storage.</summary>
internal sealed record TorchTensor(TorchStorage Storage, long Offset, int[] Size, long[] Stride)
{
    public static TorchTensor Contiguous(TorchStorage s, int[] size, long offset = 0)
    {
        var stride = new long[size.Length];
        long st = 1;
        for (int i = size.Length - 1; i >= 0; i--) { stride[i] = st; st *= size[i]; }
        return new TorchTensor(s, offset, size, stride);
    }
}

/// <summary>
/// Emits the opcodes CPython's pickler emits for torch.save's state dicts, so the reader is tested against the real
/// byte layout: protocol 2 (GLOBAL, BINUNICODE, BINPUT/LONG_BINPUT memo, BINGET reuse of strings and globals) or
/// protocol 4 (FRAME, STACK_GLOBAL, SHORT_BINUNICODE, MEMOIZE).
/// </summary>
internal sealed class PickleWriter(int protocol = 2)
{
    private readonly MemoryStream _out = new();
    private readonly Dictionary<string, int> _memo = new(StringComparer.Ordinal);
    private int _next;

    public PickleWriter Op(byte code) { _out.WriteByte(code); return this; }
    public PickleWriter Bytes(ReadOnlySpan<byte> b) { _out.Write(b); return this; }

    public PickleWriter Proto() => Op(0x80).Op((byte)protocol);
    public PickleWriter Mark() => Op((byte)'(');
    public PickleWriter Stop() => Op((byte)'.');
    public PickleWriter None() => Op((byte)'N');
    public PickleWriter Bool(bool b) => Op(b ? (byte)0x88 : (byte)0x89);
    public PickleWriter EmptyTuple() => Op((byte)')');
    public PickleWriter EmptyDict() { Op((byte)'}'); return Put(); }
    public PickleWriter Reduce() { Op((byte)'R'); return Put(); }
    public PickleWriter Build() => Op((byte)'b');
    public PickleWriter SetItem() => Op((byte)'s');
    public PickleWriter SetItems() => Op((byte)'u');
    public PickleWriter PersId() => Op((byte)'Q');

    /// <summary>Closes a tuple of <paramref name="n"/> elements the way CPython does (TUPLE1–3, else MARK…TUPLE; the MARK is the caller's).</summary>
    public PickleWriter Tuple(int n) { Op(n switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => (byte)'t' }); return Put(); }

    public PickleWriter Int(long v)
    {
        Span<byte> b = stackalloc byte[8];
        if (v is >= 0 and <= 0xff) return Op((byte)'K').Op((byte)v);
        if (v is >= 0 and <= 0xffff) { BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); return Op((byte)'M').Bytes(b[..2]); }
        if (v is >= int.MinValue and <= int.MaxValue) { BinaryPrimitives.WriteInt32LittleEndian(b, (int)v); return Op((byte)'J').Bytes(b[..4]); }
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return Op(0x8a).Op(8).Bytes(b);
    }

    public PickleWriter Str(string s) => Memoized("s:" + s, () =>
    {
        var b = Encoding.UTF8.GetBytes(s);
        if (protocol >= 4 && b.Length < 256) Op(0x8c).Op((byte)b.Length);
        else { Span<byte> n = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(n, b.Length); Op((byte)'X').Bytes(n); }
        Bytes(b);
    });

    public PickleWriter Global(string module, string name) => Memoized("g:" + module + "." + name, () =>
    {
        if (protocol >= 4) { Str(module); Str(name); Op(0x93); }
        else Op((byte)'c').Bytes(Encoding.UTF8.GetBytes(module + "\n" + name + "\n"));
    });

    /// <summary>Emits a value once, then fetches it from the memo (CPython reuses strings and globals this way).</summary>
    private PickleWriter Memoized(string key, Action emit)
    {
        if (_memo.TryGetValue(key, out int i))
        {
            if (i < 256) return Op((byte)'h').Op((byte)i);
            Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, i);
            return Op((byte)'j').Bytes(b);
        }
        emit();
        _memo[key] = _next;
        return Put();
    }

    private PickleWriter Put()
    {
        int i = _next++;
        if (protocol >= 4) return Op(0x94);
        if (i < 256) return Op((byte)'q').Op((byte)i);
        Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, i);
        return Op((byte)'r').Bytes(b);
    }

    public byte[] ToArray()
    {
        var body = _out.ToArray();
        if (protocol < 4) return body;
        // Protocol 4 frames the body after PROTO: FRAME + 8-byte length.
        var framed = new byte[body.Length + 9];
        body.AsSpan(0, 2).CopyTo(framed);
        framed[2] = 0x95;
        BinaryPrimitives.WriteInt64LittleEndian(framed.AsSpan(3), body.Length - 2);
        body.AsSpan(2).CopyTo(framed.AsSpan(11));
        return framed;
    }
}

/// <summary>Writes what <c>torch.save(state_dict, path)</c> writes: the zip layout and the pickled OrderedDict.</summary>
internal static class TorchSave
{
    public static byte[] Save(IReadOnlyList<(string Name, TorchTensor Tensor)> stateDict, int protocol = 2, string top = "archive",
        bool asParameters = false, bool withMetadataArg = false, string byteorder = "little") =>
        Archive(StateDict(stateDict, protocol, asParameters, withMetadataArg), stateDict.Select(x => x.Tensor.Storage), top, byteorder);

    /// <summary>The pickled OrderedDict, with the <c>_metadata</c> attribute torch sets, applied by BUILD.</summary>
    public static byte[] StateDict(IReadOnlyList<(string Name, TorchTensor Tensor)> stateDict, int protocol = 2, bool asParameters = false, bool withMetadataArg = false)
    {
        var w = new PickleWriter(protocol).Proto();
        w.Global("collections", "OrderedDict").EmptyTuple().Reduce();
        if (stateDict.Count > 0)
        {
            w.Mark();
            foreach (var (name, t) in stateDict) { w.Str(name); Tensor(w, t, asParameters, withMetadataArg); }
            w.SetItems();
        }
        // state: {'_metadata': OrderedDict([('', {'version': 1})])}
        w.EmptyDict().Str("_metadata").Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Str("").EmptyDict().Str("version").Int(1).SetItem().SetItem().SetItem().Build();
        return w.Stop().ToArray();
    }

    public static void Tensor(PickleWriter w, TorchTensor t, bool asParameter = false, bool withMetadataArg = false)
    {
        if (asParameter) w.Global("torch._utils", "_rebuild_parameter"); // args (data, requires_grad, hooks): TUPLE3, no MARK
        w.Global("torch._utils", "_rebuild_tensor_v2").Mark();
        w.Mark().Str("storage").Global("torch", t.Storage.Type).Str(t.Storage.Key).Str("cpu").Int(t.Storage.Numel).Tuple(5).PersId();
        w.Int(t.Offset);
        IntTuple(w, t.Size.Select(x => (long)x).ToArray());
        IntTuple(w, t.Stride);
        w.Bool(false);
        w.Global("collections", "OrderedDict").EmptyTuple().Reduce();
        if (withMetadataArg) w.Global("collections", "OrderedDict").EmptyTuple().Reduce();
        w.Tuple(withMetadataArg ? 7 : 6).Reduce();
        if (asParameter) w.Bool(true).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple(3).Reduce();
    }

    private static void IntTuple(PickleWriter w, long[] v)
    {
        if (v.Length == 0) { w.EmptyTuple(); return; }
        if (v.Length > 3) w.Mark();
        foreach (long x in v) w.Int(x);
        w.Tuple(v.Length);
    }

    /// <summary>The zip as PyTorchFileWriter lays it out: data.pkl, byteorder, data/&lt;key&gt;…, version, .data/serialization_id.</summary>
    public static byte[] Archive(byte[] pickle, IEnumerable<TorchStorage> storages, string top = "archive", string byteorder = "little")
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] bytes)
            {
                using var s = zip.CreateEntry(top + "/" + name, CompressionLevel.NoCompression).Open();
                s.Write(bytes);
            }
            Add("data.pkl", pickle);
            Add("byteorder", Encoding.ASCII.GetBytes(byteorder));
            foreach (var s in storages.DistinctBy(s => s.Key).OrderBy(s => s.Key, StringComparer.Ordinal)) Add("data/" + s.Key, s.Bytes);
            Add("version", "3\n"u8.ToArray());
            Add(".data/serialization_id", "1234567890"u8.ToArray());
        }
        return ms.ToArray();
    }
}
