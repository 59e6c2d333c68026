// autochip processing element: signed multiply-accumulate.
//   acc <= acc + a * w        (a: A_BITS signed, w: W_BITS signed, acc: ACC_BITS signed)
// Control (synchronous, active high): rst zeroes acc; with en low the PE holds. With en high,
// clr starts a new sum (acc <= valid ? a*w : 0), otherwise a valid beat accumulates.
// ACC_BITS must be >= A_BITS + W_BITS (one full product); autochip emit checks the depth.
`default_nettype none
module autochip_pe_mac #(
    parameter integer A_BITS   = 8,
    parameter integer W_BITS   = 8,
    parameter integer ACC_BITS = 32
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       en,
    input  wire                       clr,
    input  wire                       valid,
    input  wire [A_BITS-1:0]          a,
    input  wire [W_BITS-1:0]          w,
    output reg  signed [ACC_BITS-1:0] acc
);
    localparam integer P_BITS = A_BITS + W_BITS;

    wire signed [P_BITS-1:0]   prod = $signed(a) * $signed(w);
    wire signed [ACC_BITS-1:0] term;

    generate
        if (ACC_BITS > P_BITS) begin : g_extend
            assign term = {{(ACC_BITS - P_BITS){prod[P_BITS-1]}}, prod};
        end else begin : g_exact
            assign term = prod;
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) begin
            acc <= {ACC_BITS{1'b0}};
        end else if (en) begin
            if (clr) begin
                acc <= valid ? term : {ACC_BITS{1'b0}};
            end else if (valid) begin
                acc <= acc + term;
            end
        end
    end
endmodule
`default_nettype wire
