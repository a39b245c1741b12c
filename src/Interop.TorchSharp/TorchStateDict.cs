using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using TTensor = TorchSharp.torch.Tensor;
using ScalarType = TorchSharp.torch.ScalarType;
using DeviceType = TorchSharp.DeviceType;

namespace Compiled.Nets.Interop;

/// <summary>
/// Moves weights between a generated network's <see cref="ParameterStore"/> and TorchSharp (state dicts, modules).
/// Names are PyTorch state-dict names on both sides; shapes and dtypes are validated and every problem is reported in
/// one error. Data is copied once, directly between the store's memory and the tensor's (no intermediate arrays).
/// </summary>
public static class TorchStateDict
{
    /// <summary>A state dict of new CPU tensors holding copies of the store's parameters and buffers.</summary>
    /// <remarks><c>num_batches_tracked</c> becomes int64, as in PyTorch.</remarks>
    public static Dictionary<string, TTensor> ToTorch(ParameterStore store)
    {
        var dict = new Dictionary<string, TTensor>(StringComparer.Ordinal);
        foreach (var p in store.All)
        {
            long[] shape = p.Shape.Select(d => (long)d).ToArray();
            var values = store.ReadValue(p);
            if (p.Role == ParameterRole.BatchesTracked)
            {
                dict[p.Name] = torch.tensor((long)values[0], ScalarType.Int64);
                continue;
            }
            var t = torch.empty(shape, ScalarType.Float32);
            MemoryMarshal.AsBytes(values).CopyTo(t.bytes);
            dict[p.Name] = t;
        }
        return dict;
    }

    /// <summary>Copies a TorchSharp state dict into the store.</summary>
    /// <param name="store">Destination.</param>
    /// <param name="stateDict">Source tensors by state-dict name (any floating dtype; int64 for num_batches_tracked).</param>
    /// <param name="strict">When true (default), keys the network does not have are an error, as in PyTorch.</param>
    /// <exception cref="ArgumentException">Lists every missing, unexpected and mismatched key (with both shapes).</exception>
    public static void Load(ParameterStore store, IReadOnlyDictionary<string, TTensor> stateDict, bool strict = true)
    {
        var problems = new List<string>();
        foreach (var p in store.All)
        {
            if (!stateDict.TryGetValue(p.Name, out var t)) { problems.Add($"missing '{p.Name}' {p.ShapeText}"); continue; }
            if (!t.shape.Select(d => (int)d).SequenceEqual(p.Shape)) problems.Add($"'{p.Name}': torch [{string.Join(", ", t.shape)}] vs network {p.ShapeText}");
            else if (!t.is_floating_point() && !(p.Role == ParameterRole.BatchesTracked && t.dtype == ScalarType.Int64))
                problems.Add($"'{p.Name}': dtype {t.dtype} is not a floating type");
        }
        if (strict)
            foreach (var key in stateDict.Keys)
                if (!store.TryGet(key, out _)) problems.Add($"unexpected '{key}' [{string.Join(", ", stateDict[key].shape)}]");
        if (problems.Count > 0)
            throw new ArgumentException($"The state dict does not fit the network ({store.Parameters.Count} parameters, {store.Buffers.Count} buffers): {string.Join("; ", problems)}.");

        using var noGrad = torch.no_grad();
        foreach (var p in store.All)
        {
            var t = stateDict[p.Name];
            if (p.Role == ParameterRole.BatchesTracked) { store.Value(p)[0] = t.item<long>(); continue; }
            using var f = t.device_type == DeviceType.CPU && t.dtype == ScalarType.Float32 && t.is_contiguous() ? null : t.to(ScalarType.Float32, torch.CPU).contiguous();
            MemoryMarshal.Cast<byte, float>((f ?? t).bytes).CopyTo(store.Value(p));
        }
    }

    /// <summary>Copies a module's <c>state_dict()</c> into the store.</summary>
    public static void Load(ParameterStore store, nn.Module module, bool strict = true) => Load(store, module.state_dict(), strict);

    /// <summary>Writes the store's values into a module's existing parameters and buffers (shapes validated).</summary>
    /// <exception cref="ArgumentException">Lists every missing, unexpected and mismatched key.</exception>
    public static void CopyTo(ParameterStore store, nn.Module module)
    {
        var target = module.state_dict();
        var problems = new List<string>();
        foreach (var p in store.All)
        {
            if (!target.TryGetValue(p.Name, out var t)) problems.Add($"module has no '{p.Name}'");
            else if (!t.shape.Select(d => (int)d).SequenceEqual(p.Shape)) problems.Add($"'{p.Name}': module [{string.Join(", ", t.shape)}] vs network {p.ShapeText}");
        }
        foreach (var key in target.Keys) if (!store.TryGet(key, out _)) problems.Add($"network has no '{key}'");
        if (problems.Count > 0) throw new ArgumentException($"The module does not fit the network: {string.Join("; ", problems)}.");
        using var noGrad = torch.no_grad();
        foreach (var p in store.All)
        {
            var t = target[p.Name];
            if (p.Role == ParameterRole.BatchesTracked) { t.fill_((long)store.ReadValue(p)[0]); continue; }
            using var src = torch.empty(t.shape, ScalarType.Float32);
            MemoryMarshal.AsBytes(store.ReadValue(p)).CopyTo(src.bytes);
            t.copy_(src);
        }
    }
}
