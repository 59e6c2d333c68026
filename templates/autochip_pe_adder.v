// autochip processing element: AdderNet (l1-distance) accumulate.
//   acc <= acc - |a - w|      (a, w: BITS signed on one scale, acc: ACC_BITS signed)
// Control as autochip_pe_mac. ACC_BITS must be >= BITS + 1 (one full term, signed).
`default_nettype none
module autochip_pe_adder #(
    parameter integer BITS     = 8,
    parameter integer ACC_BITS = 32
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       en,
    input  wire                       clr,
    input  wire                       valid,
    input  wire [BITS-1:0]            a,
    input  wire [BITS-1:0]            w,
    output reg  signed [ACC_BITS-1:0] acc
);
    // a - w needs BITS+1 bits signed; its magnitude fits BITS+1 bits unsigned.
    localparam integer D_BITS = BITS + 1;

    wire [D_BITS-1:0]   diff = {a[BITS-1], a} - {w[BITS-1], w};
    wire [D_BITS-1:0]   mag  = diff[D_BITS-1] ? (~diff + 1'b1) : diff;
    wire [ACC_BITS-1:0] term;

    generate
        if (ACC_BITS > D_BITS) begin : g_extend
            assign term = {{(ACC_BITS - D_BITS){1'b0}}, mag};
        end else begin : g_exact
            assign term = mag;
        end
    endgenerate

    always @(posedge clk) begin
        if (rst) begin
            acc <= {ACC_BITS{1'b0}};
        end else if (en) begin
            if (clr) begin
                acc <= valid ? -$signed(term) : {ACC_BITS{1'b0}};
            end else if (valid) begin
                acc <= acc - $signed(term);
            end
        end
    end
endmodule
`default_nettype wire
