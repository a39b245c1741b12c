using System.Buffers.Binary;
using System.Text;

namespace Compiled.Nets.Serialization;

/// <summary>Element types of ONNX tensors used by exported graphs (ONNX's TensorProto.DataType numbers).</summary>
public enum OnnxElement
{
    /// <summary>float32.</summary>
    Float = 1,
    /// <summary>int64 (token ids, attention masks, shapes and indices).</summary>
    Int64 = 7,
}

/// <summary>
/// Builds an ONNX model (opset 17, IR version 8) of a network's inference graph with its weights as initializers, and
/// writes it as the ONNX protobuf. Generated networks call it from their <c>ExportOnnx</c>; the batch dimension is
/// symbolic (<c>batch</c>), so the model serves any batch size.
/// </summary>
/// <remarks>
/// The protobuf is encoded here (a few message types, varints and length-delimited fields) rather than through
/// Google.Protobuf and a generated onnx.proto, which would add a dependency and a code generation step for ≈ 30 fields.
/// </remarks>
public sealed class OnnxGraph
{
    private readonly List<byte[]> _nodes = new(), _initializers = new(), _inputs = new(), _outputs = new();
    private readonly HashSet<string> _initializerNames = new(StringComparer.Ordinal);
    private readonly string _name;
    private int _next;

    /// <summary>The opset the graph is written for.</summary>
    public const int Opset = 17;

    /// <summary>Starts a graph named after the network.</summary>
    public OnnxGraph(string name) => _name = name;

    /// <summary>Declares a graph input of shape [batch, ..perSample]; a dimension of -1 is the symbolic <c>sequence</c>.</summary>
    public void Input(string name, OnnxElement type, IReadOnlyList<int> perSample) => _inputs.Add(ValueInfo(name, (int)type, perSample));

    /// <summary>Declares a float32 graph output of shape [batch, ..perSample]; a dimension of -1 is the symbolic <c>sequence</c>.</summary>
    public void Output(string name, IReadOnlyList<int> perSample) => _outputs.Add(ValueInfo(name, (int)OnnxElement.Float, perSample));

    /// <summary>Adds a float32 initializer (a weight) once; returns its name.</summary>
    public string Initializer(string name, ReadOnlySpan<float> values, params int[] dims)
    {
        if (!_initializerNames.Add(name)) return name;
        var raw = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), values[i]);
        var t = new Proto();
        foreach (int d in dims) t.Int(1, d);
        t.Int(2, 1); // FLOAT
        t.String(8, name);
        t.Bytes(9, raw);
        _initializers.Add(t.ToArray());
        return name;
    }

    /// <summary>A [cols, rows] initializer holding the transpose of a row-major [rows, cols] matrix (a Linear weight for MatMul).</summary>
    public string TransposedInitializer(string name, ReadOnlySpan<float> values, int rows, int cols)
    {
        var t = new float[values.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = values[r * cols + c];
        return Initializer(name, t, cols, rows);
    }

    /// <summary>A float32 scalar constant as an initializer.</summary>
    public string Scalar(float value) => Initializer($"const_{_next++}", [value]);

    /// <summary>An int64 constant as an initializer: a scalar, or a 1-D tensor when <paramref name="vector"/>.</summary>
    public string Int64(bool vector, params long[] values)
    {
        string name = $"const_{_next++}";
        _initializerNames.Add(name);
        var raw = new byte[values.Length * 8];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8 * i), values[i]);
        var t = new Proto();
        if (vector) t.Int(1, values.Length);
        t.Int(2, (int)OnnxElement.Int64);
        t.String(8, name);
        t.Bytes(9, raw);
        _initializers.Add(t.ToArray());
        return name;
    }

    /// <summary>Adds a node; attributes are (name, value) with int, long, float, string, int[] or long[] values; an
    /// input named "" is an omitted optional input.</summary>
    public string Node(string opType, string[] inputs, string output, params (string Name, object Value)[] attributes)
    {
        var n = new Proto();
        foreach (var i in inputs) n.String(1, i);
        n.String(2, output);
        n.String(3, output + "_" + opType);
        n.String(4, opType);
        foreach (var (name, value) in attributes)
        {
            var a = new Proto();
            a.String(1, name);
            switch (value)
            {
                case float f: a.Fixed32(2, BitConverter.SingleToInt32Bits(f)); a.Int(20, 1); break;
                case int or long: a.Int(3, Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture)); a.Int(20, 2); break;
                case string text: a.String(4, text); a.Int(20, 3); break;
                case int[] ints: foreach (int v in ints) a.Int(8, v); a.Int(20, 7); break;
                case long[] longs: foreach (long v in longs) a.Int(8, v); a.Int(20, 7); break;
                default: throw new ArgumentException($"ONNX attribute '{name}' of type {value.GetType().Name} is not supported.");
            }
            n.Message(5, a);
        }
        _nodes.Add(n.ToArray());
        return output;
    }

    /// <summary>The model as ONNX protobuf bytes.</summary>
    public byte[] ToBytes()
    {
        var g = new Proto();
        foreach (var n in _nodes) g.Bytes(1, n);
        g.String(2, _name);
        foreach (var t in _initializers) g.Bytes(5, t);
        foreach (var i in _inputs) g.Bytes(11, i);
        foreach (var o in _outputs) g.Bytes(12, o);
        var opset = new Proto();
        opset.String(1, "");
        opset.Int(2, Opset);
        var m = new Proto();
        m.Int(1, 8); // IR version 8 (opset 17's)
        m.String(2, "Compiled.Nets");
        m.String(3, typeof(OnnxGraph).Assembly.GetName().Version?.ToString() ?? "");
        m.Message(8, opset);
        m.Message(7, g);
        return m.ToArray();
    }

    /// <summary>Writes the model to <paramref name="path"/> atomically.</summary>
    public void Save(string path) => AtomicFile.Write(path, ToBytes());

    private static byte[] ValueInfo(string name, int elemType, IReadOnlyList<int> perSample)
    {
        var shape = new Proto();
        var batch = new Proto();
        batch.String(2, "batch");
        shape.Message(1, batch);
        foreach (int d in perSample)
        {
            var dim = new Proto();
            if (d < 0) dim.String(2, "sequence"); else dim.Int(1, d);
            shape.Message(1, dim);
        }
        var tensor = new Proto();
        tensor.Int(1, elemType);
        tensor.Message(2, shape);
        var type = new Proto();
        type.Message(1, tensor);
        var v = new Proto();
        v.String(1, name);
        v.Message(2, type);
        return v.ToArray();
    }

    /// <summary>Protobuf wire encoding: varints (type 0), 32-bit (type 5) and length-delimited fields (type 2).</summary>
    private sealed class Proto
    {
        private readonly MemoryStream _s = new();

        private void Varint(ulong v)
        {
            while (v >= 0x80) { _s.WriteByte((byte)(v | 0x80)); v >>= 7; }
            _s.WriteByte((byte)v);
        }

        public void Int(int field, long value) { Varint((ulong)(field << 3)); Varint((ulong)value); }
        public void Fixed32(int field, int value) { Varint((ulong)(field << 3 | 5)); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, value); _s.Write(b); }
        public void Bytes(int field, ReadOnlySpan<byte> value) { Varint((ulong)(field << 3 | 2)); Varint((ulong)value.Length); _s.Write(value); }
        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));
        public void Message(int field, Proto value) => Bytes(field, value.ToArray());
        public byte[] ToArray() => _s.ToArray();
    }
}
