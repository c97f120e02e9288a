<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:map="http://www.w3.org/2005/xpath-functions/map" xmlns:array="http://www.w3.org/2005/xpath-functions/array" xmlns:fn="http://www.w3.org/2005/xpath-functions" exclude-result-prefixes="#all">
  <!-- An incoming JSON payload converted with json-to-xml and read with XPath. -->
  <xsl:template match="/nachricht">
    <xsl:variable name="j" select="json-to-xml(payload)"/>
    <r>
      <xsl:copy-of select="$j"/>
      <vorgang><xsl:value-of select="$j/fn:map/fn:string[@key = 'vorgang']"/></vorgang>
      <personen><xsl:value-of select="$j//fn:array[@key = 'personen']/fn:map/fn:string[@key = 'name']" separator=", "/></personen>
      <betrag><xsl:value-of select="xs:decimal($j/fn:map/fn:number[@key = 'betrag']) * 2"/></betrag>
    </r>
  </xsl:template>
</xsl:stylesheet>
