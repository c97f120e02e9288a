<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:f="urn:drehscheibe:test:f" exclude-result-prefixes="#all">
  <!-- Casting and the textual forms of numbers: what an amount looks like after arithmetic. -->
  <xsl:template match="/">
    <t>
      <a><xsl:value-of select="xs:integer('0042'), xs:decimal('12.500'), xs:decimal('-0.0'), xs:double('1e6'), xs:double('1234567.0'), xs:double('0.000001'), xs:float('3.14')"/></a>
      <b><xsl:value-of select="1e6, 1.0e-7, 12345678901234567890, 0.1e0 * 3, 1 div 8"/></b>
      <c><xsl:value-of select="string(1 div 0e0), string(-1 div 0e0), string(0e0 div 0e0), -0e0, number('  12 '), number('12,5')"/></c>
      <d><xsl:value-of select="xs:boolean('1'), xs:boolean('false'), boolean('false'), boolean(0), boolean(()), string(true())"/></d>
      <e><xsl:value-of select="xs:date('2024-02-29') instance of xs:date, '5' instance of xs:string, 5 instance of xs:decimal, 5.0 instance of xs:integer, xs:untypedAtomic('5') + 1"/></e>
      <f><xsl:value-of select="xs:integer(3.99), xs:integer(-3.99), xs:decimal(1.5e2), xs:string(xs:double(100)), xs:duration('P1Y14M'), xs:dayTimeDuration('PT36H')"/></f>
      <g><xsl:value-of select="dateTime(xs:date('2024-05-01'), xs:time('08:30:00')), xs:date('2024-05-01T08:30:00' => substring(1, 10)), xs:gYear('2024'), xs:yearMonthDuration('P18M') div 12"/></g>
      <h><xsl:value-of select="max((1, 2.5, 3e0)) instance of xs:double, sum(()) , sum((), 0.0), avg((1, 2)), avg(()) => empty()"/></h>
    </t>
  </xsl:template>
</xsl:stylesheet>
