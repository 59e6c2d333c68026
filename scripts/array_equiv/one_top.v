`default_nettype none
module one_top #(parameter integer AB = 8, BB = 8, CB = 1, OB = 8) (
    input wire clk, input wire rst, input wire in_valid, input wire in_last,
    input wire [AB-1:0] a_in, input wire [BB-1:0] b_in, input wire [CB-1:0] col_sel,
    output wire [OB-1:0] d_new);
    ARR u (.clk(clk), .rst(rst), .in_valid(in_valid), .in_last(in_last), .a_in(a_in), .b_in(b_in), .col_sel(col_sel), .col_data(d_new));
endmodule
