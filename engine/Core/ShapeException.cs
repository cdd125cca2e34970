namespace MtlMoe.Engine;

/// <summary>Bad shapes, dims or arguments given to an op; the message names the op and the shapes.</summary>
public sealed class ShapeException(string message) : ArgumentException(message);
